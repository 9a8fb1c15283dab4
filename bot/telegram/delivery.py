"""Sending to Telegram despite its transient failures: retries with backoff.

python-telegram-bot's rate limiter already waits out a 429 (`retry_after`) a few times; it
does nothing for the other transient failures a long campaign meets: 5xx answers, timeouts,
connection resets. A reply lost to one of those may be the one a person in crisis needed,
so sends are retried here with exponential backoff (plus jitter, so that many replies
failing together do not retry together). Errors that retrying cannot fix (400 Bad Request,
403 the user blocked the bot, 401 a bad token) are raised at once.

What retrying cannot know: when a request timed out or the connection broke *after*
Telegram had carried it out, the retry sends the message a second time. That is the price
of never losing a reply; the timeout (`TELEGRAM_TIMEOUT_SECONDS`) is generous so that it
stays rare.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from telegram.error import BadRequest, NetworkError, RetryAfter

log = logging.getLogger(__name__)

T = TypeVar("T")

ATTEMPTS = 6
FIRST_DELAY_SECONDS = 0.5
MAX_DELAY_SECONDS = 16.0


async def with_retries(
    send: Callable[[], Awaitable[T]],
    *,
    attempts: int = ATTEMPTS,
    first_delay: float = FIRST_DELAY_SECONDS,
    max_delay: float = MAX_DELAY_SECONDS,
) -> T:
    """`await send()`, retried on transient Telegram failures; the last failure is raised."""
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            return await send()
        except RetryAfter as exc:
            if attempt == attempts:
                raise
            wait = _seconds(exc.retry_after) + random.uniform(0, 0.1)
            reason = "429"
        except BadRequest:
            raise  # a NetworkError subclass, but sending it again gives the same answer
        except NetworkError as exc:  # 5xx, TimedOut, connection errors
            if attempt == attempts:
                raise
            wait = delay * random.uniform(0.8, 1.2)
            delay = min(delay * 2, max_delay)
            reason = type(exc).__name__
        log.warning("telegram send failed (%s), attempt %d of %d", reason, attempt, attempts)
        await asyncio.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def _seconds(value: int | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
