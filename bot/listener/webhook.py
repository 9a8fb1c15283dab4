"""Receiving Telegram's updates by webhook and handing them to python-telegram-bot.

Every request is checked before anything is read from it: the secret token Telegram sends in
`X-Telegram-Bot-Api-Secret-Token` (the one given to setWebhook) must match, compared in
constant time. A valid update is acknowledged as soon as its user's turn lock is held (see
`bot.storage.user_lock`) and processed in the background, so Telegram gets its 200 in
milliseconds and still never sees two turns of one user run out of order.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
from typing import Any

from aiohttp import web
from telegram import Update
from telegram.ext import Application

from bot.observability import metrics
from bot.storage.pseudonym import pseudonymise
from bot.storage.user_lock import UserLocks
from bot.telegram.ordering import ordering_key

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)


def secret_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison, so the secret cannot be guessed from response times."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


class WebhookReceiver:
    """The aiohttp handler for `POST <webhook path>`; tracks the turns it started."""

    def __init__(
        self,
        application: Application,  # type: ignore[type-arg]
        secret: str,
        pseudonym_secret: str,
        locks: UserLocks,
    ) -> None:
        self.application = application
        self.secret = secret
        self.pseudonym_secret = pseudonym_secret
        self.locks = locks
        self._turns: set[asyncio.Task[None]] = set()

    async def handle(self, request: web.Request) -> web.Response:
        arrived = time.perf_counter()
        if not secret_matches(request.headers.get(SECRET_HEADER), self.secret):
            metrics.WEBHOOK_REQUESTS.labels(outcome="forbidden").inc()
            log.warning("webhook request without the right secret token refused")
            return web.Response(status=403, text="forbidden")
        update = await self._read_update(request)
        if update is None:
            metrics.WEBHOOK_REQUESTS.labels(outcome="malformed").inc()
            return web.Response(status=400, text="malformed update")
        acquired = asyncio.Event()
        turn = asyncio.create_task(self._turn(update, acquired))
        self._turns.add(turn)
        turn.add_done_callback(self._turns.discard)
        lock_wait = asyncio.create_task(acquired.wait())
        await asyncio.wait({turn, lock_wait}, return_when=asyncio.FIRST_COMPLETED)
        lock_wait.cancel()
        if not acquired.is_set():
            # The lock (that is, the database) failed: Telegram retries a non-2xx later.
            metrics.WEBHOOK_REQUESTS.labels(outcome="unavailable").inc()
            return web.Response(status=503, text="try again later")
        metrics.WEBHOOK_REQUESTS.labels(outcome="accepted").inc()
        metrics.WEBHOOK_ACK_LATENCY.observe(time.perf_counter() - arrived)
        return web.Response(status=200, text="ok")

    async def _read_update(self, request: web.Request) -> Update | None:
        try:
            data: Any = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            log.warning("webhook body is not JSON")
            return None
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            log.warning("webhook body is not an update")
            return None
        try:
            return Update.de_json(data, self.application.bot)
        except Exception as exc:  # PTB raises whatever the malformed field causes
            log.warning("webhook update could not be read: %s", type(exc).__name__)
            return None

    async def _turn(self, update: Update, acquired: asyncio.Event) -> None:
        """Hold the user's lock, process the update as PTB's own update fetcher would."""
        key = ordering_key(update)
        lock = (
            self.locks.hold(pseudonymise(key, self.pseudonym_secret))
            if key is not None
            else contextlib.nullcontext()
        )
        try:
            async with lock:
                acquired.set()
                await self.application.update_processor.process_update(
                    update, self.application.process_update(update)
                )
        except Exception as exc:
            if not acquired.is_set():  # answered 503: Telegram delivers it again later
                log.error("webhook update %s refused: %s", update.update_id, type(exc).__name__)
                return
            log.exception("webhook update %s failed", update.update_id)

    async def drain(self, seconds: float) -> None:
        """Wait for the turns in progress (at shutdown), at most `seconds`."""
        if self._turns:
            await asyncio.wait(set(self._turns), timeout=seconds)
