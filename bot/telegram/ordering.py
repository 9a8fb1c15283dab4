"""Concurrent updates across users, strict order within one user.

python-telegram-bot processes updates one at a time unless told otherwise; a slow NLU call
for one user must not hold up everybody else, but one user's messages must be answered in
the order they were sent. This processor runs updates concurrently and serialises them per
user with one lock each, dropped as soon as nobody waits on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor


def ordering_key(update: object) -> int | None:
    """The user whose messages must stay in order; None for updates without a user."""
    if isinstance(update, Update):
        if update.effective_user is not None:
            return update.effective_user.id
        if update.effective_chat is not None:
            return update.effective_chat.id
    return None


class PerUserOrderedProcessor(BaseUpdateProcessor):
    """At most `max_concurrent_updates` at once; never two of the same user at once."""

    def __init__(
        self, max_concurrent_updates: int, on_done: Callable[[int], None] | None = None
    ) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, tuple[asyncio.Lock, int]] = {}
        self._on_done = on_done
        """Told each update id whose processing ended (not one cancelled at shutdown)."""

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        await self._in_order(update, coroutine)
        if self._on_done is not None and isinstance(update, Update):
            self._on_done(update.update_id)

    async def _in_order(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = ordering_key(update)
        if key is None:
            await coroutine
            return
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                await coroutine
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    async def initialize(self) -> None:
        """Nothing to set up: the locks are created on demand."""

    async def shutdown(self) -> None:
        self._locks.clear()
