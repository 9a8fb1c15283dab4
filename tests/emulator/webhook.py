"""Telegram's side of a webhook: posting updates to the bot, as the Bot API server does.

Modelled on tdlib/telegram-bot-api's WebhookActor, in the parts the bot relies on:

* Updates are posted as JSON with the ``X-Telegram-Bot-Api-Secret-Token`` header given to
  setWebhook.
* One queue per chat: a chat's next update is sent only after the previous one was answered
  with a 2xx; different chats are served concurrently, up to ``max_connections``.
* Anything but a 2xx (or a failed connection) is retried later with a growing delay
  (shortened here: tenths of a second instead of seconds).

A test can put a load balancer in front of several replicas (``route_webhook``): each post
goes to one backend chosen at random. A redelivered update (``push_duplicate``) is posted once
more, out of its chat's turn, as soon as it has been posted once (at once if it was already),
to a different backend than that first post when there are several: what happens when
Telegram gives up waiting on a slow replica and tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from .factories import JSON

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_RETRY_BASE_SECONDS = 0.1
_RETRY_MAX_SECONDS = 1.0


@dataclass
class WebhookDelivery:
    """One post of an update to the bot: where, and how the bot answered (None: in flight)."""

    update_id: int
    url: str
    time: float
    duplicate: bool = False
    status: int | None = None  # the HTTP status, or 0 when the connection failed
    seconds: float | None = None  # from sending the post to the bot's answer


def queue_id(update: JSON) -> int | str:
    """The chat an update belongs to (Telegram's per-chat delivery queue)."""
    for kind in ("message", "edited_message", "channel_post", "edited_channel_post"):
        chat = (update.get(kind) or {}).get("chat") or {}
        if isinstance(chat.get("id"), int):
            return int(chat["id"])
    query = update.get("callback_query") or {}
    chat = (query.get("message") or {}).get("chat") or {}
    if isinstance(chat.get("id"), int):
        return int(chat["id"])
    sender = query.get("from") or {}
    if isinstance(sender.get("id"), int):
        return int(sender["id"])
    return f"update-{update.get('update_id')}"  # no chat: a queue of its own


class WebhookSender:
    """Posts updates to the registered URL (or the test's backends) until stopped."""

    def __init__(
        self,
        deliveries: list[WebhookDelivery],
        backends: list[str],
        on_activity: Callable[[], None],
    ) -> None:
        self.url = ""
        self.secret = ""
        self.max_connections = 40
        self.backends = backends  # shared with the emulator: set before or after setWebhook
        self.deliveries = deliveries
        self._on_activity = on_activity
        self._queues: dict[int | str, deque[JSON]] = {}
        self._busy: set[int | str] = set()
        self._duplicates: set[asyncio.Task[bool]] = set()
        self._slots = asyncio.Semaphore(self.max_connections)
        self._workers: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_backend: dict[int, str] = {}
        self._waiting_duplicates: dict[int, JSON] = {}

    # -- lifecycle -------------------------------------------------------------------------

    def configure(self, url: str, secret: str, max_connections: int) -> None:
        """(Re)point the webhook; a replica registering the same URL again changes nothing else."""
        self.url, self.secret = url, secret
        if max(1, max_connections) != self.max_connections:
            self.max_connections = max(1, max_connections)
            self._slots = asyncio.Semaphore(self.max_connections)

    def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> list[JSON]:
        """Stop posting; returns the updates the bot has not taken yet, oldest first."""
        tasks = [t for t in (self._task, *self._workers, *self._duplicates) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
        left = [update for queue in self._queues.values() for update in queue]
        self._queues.clear()
        return sorted(left, key=lambda update: int(update["update_id"]))

    # -- what the emulator hands over ------------------------------------------------------

    def enqueue(self, update: JSON) -> None:
        self._queues.setdefault(queue_id(update), deque()).append(update)
        self._wake.set()

    def redeliver(self, update: JSON) -> None:
        update_id = int(update["update_id"])
        if update_id in self._last_backend:
            self._post_duplicate(update)
        else:  # Telegram cannot resend what it has not sent yet: wait for the first post
            self._waiting_duplicates[update_id] = update

    def _post_duplicate(self, update: JSON) -> None:
        task = asyncio.create_task(self._post(update, duplicate=True))
        self._duplicates.add(task)
        task.add_done_callback(self._duplicates.discard)

    @property
    def pending_count(self) -> int:
        queued = sum(len(queue) for queue in self._queues.values())
        return queued + len(self._duplicates) + len(self._waiting_duplicates)

    # -- delivery --------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            for chat in list(self._queues):
                if chat not in self._busy and self._queues[chat]:
                    self._busy.add(chat)
                    worker = asyncio.create_task(self._deliver_next(chat))
                    self._workers.add(worker)
                    worker.add_done_callback(self._workers.discard)
            await self._wake.wait()

    async def _deliver_next(self, chat: int | str) -> None:
        """Post the chat's oldest update until the bot takes it, then move to the next."""
        queue = self._queues[chat]
        update = queue[0]
        failures = 0
        try:
            while not await self._post(update):
                failures += 1
                await asyncio.sleep(min(_RETRY_BASE_SECONDS * 2**failures, _RETRY_MAX_SECONDS))
            queue.popleft()
            if not queue:
                del self._queues[chat]
        finally:
            self._busy.discard(chat)
            self._wake.set()

    def _target(self, update_id: int, duplicate: bool) -> str:
        if not self.backends:
            return self.url
        choices = self.backends
        last = self._last_backend.get(update_id)
        if duplicate and last is not None and len(self.backends) > 1:
            choices = [b for b in self.backends if b != last]
        return random.choice(choices)

    async def _post(self, update: JSON, duplicate: bool = False) -> bool:
        """One post; True when the bot answered 2xx."""
        assert self._session is not None
        update_id = int(update["update_id"])
        url = self._target(update_id, duplicate)
        self._last_backend[update_id] = url
        waiting = self._waiting_duplicates.pop(update_id, None)
        if waiting is not None:
            self._post_duplicate(waiting)
        delivery = WebhookDelivery(update_id, url, time.monotonic(), duplicate)
        self.deliveries.append(delivery)
        self._on_activity()
        headers = {"Content-Type": "application/json"}
        if self.secret:
            headers[SECRET_HEADER] = self.secret
        async with self._slots:
            sent = time.monotonic()
            try:
                async with self._session.post(url, data=json.dumps(update), headers=headers) as r:
                    await r.read()
                    delivery.status = r.status
            except (TimeoutError, aiohttp.ClientError, OSError):
                delivery.status = 0
            delivery.seconds = time.monotonic() - sent
        self._on_activity()
        return 200 <= delivery.status < 300


def webhook_info(sender: WebhookSender) -> dict[str, Any]:
    return {
        "url": sender.url,
        "has_custom_certificate": False,
        "pending_update_count": sender.pending_count,
        "max_connections": sender.max_connections,
    }
