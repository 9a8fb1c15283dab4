"""Optional error reporting to Sentry (`SENTRY_DSN`), with user data scrubbed before sending.

Sentry's SDK attaches request bodies, local variables, breadcrumbs of log lines and user
objects by default; any of them could hold what a user wrote or their Telegram id. The
scrubber keeps what locates a bug (exception type, stack frames' file, function and line)
and drops the rest.
"""

from __future__ import annotations

import logging
import re
from typing import Any

log = logging.getLogger(__name__)

_DIGITS = re.compile(r"\d{5,}")  # Telegram ids and anything like them
_DROPPED_KEYS = ("request", "user", "breadcrumbs", "extra", "contexts", "server_name")


def scrub_event(event: dict[str, Any], _hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """`before_send`: remove request data, users, breadcrumbs, local variables, long numbers.

    Exception messages are kept with long digit runs masked: they name the failing thing
    (a URL, a table) and may by accident contain an id; never a user's text, which the bot
    does not put into exceptions.
    """
    for key in _DROPPED_KEYS:
        event.pop(key, None)
    if "logentry" in event:
        event["logentry"] = {"message": _mask(str(event["logentry"].get("message", "")))}
    if "message" in event:
        event["message"] = _mask(str(event["message"]))
    for exception in (event.get("exception") or {}).get("values") or []:
        if "value" in exception:
            exception["value"] = _mask(str(exception["value"]))
        for frame in (exception.get("stacktrace") or {}).get("frames") or []:
            frame.pop("vars", None)
    for thread in (event.get("threads") or {}).get("values") or []:
        for frame in (thread.get("stacktrace") or {}).get("frames") or []:
            frame.pop("vars", None)
    return event


def _mask(value: str) -> str:
    return _DIGITS.sub("[number]", value)


def init_sentry(dsn: str | None, transport: Any = None) -> bool:
    """Start the SDK when a DSN is configured; returns whether it was started.

    `transport` replaces the HTTP transport (the tests capture what would be sent).
    """
    if not dsn:
        return False
    import sentry_sdk

    sentry_sdk.init(
        dsn=dsn,
        transport=transport,
        include_local_variables=False,
        max_breadcrumbs=0,
        before_send=scrub_event,  # type: ignore[arg-type]
        traces_sample_rate=0.0,
    )
    log.info("error reports go to Sentry")
    return True
