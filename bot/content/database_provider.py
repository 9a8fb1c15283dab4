"""Serving the library from the database, refreshed within seconds of an approved change.

`Conversation` asks `current()` on every turn and must never wait for the database, so the
library is kept in memory and a background task polls `content_state.version` (one integer)
every `CONTENT_REFRESH_SECONDS`. When it changed, the live revisions are read and checked
with the loader's rules; a failed read or a library with errors is logged and the last good
library stays in service, as with a broken file edit before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from bot.content.loader import ContentError
from bot.content.model import Library
from bot.content.validation import check_records
from bot.storage.content_store import ContentStore

log = logging.getLogger(__name__)


class LibrarySource(Protocol):
    """What a conversation needs: the library to answer this turn with."""

    def current(self) -> Library: ...


class StaticLibrary:
    """A library that never changes, e.g. `StaticLibrary(load_library(folder))`: for tests and
    tools that work on a YAML folder without a database. The running bot uses
    `DatabaseLibraryProvider`."""

    def __init__(self, library: Library) -> None:
        self._library = library

    def current(self) -> Library:
        return self._library


class DatabaseLibraryProvider:
    """The live library from the database; `start()` loads it and starts polling."""

    def __init__(self, store: ContentStore, check_interval: float = 1.0) -> None:
        self.store = store
        self.check_interval = check_interval
        self._library: Library | None = None
        self._version: int | None = None
        self._task: asyncio.Task[None] | None = None
        self.last_error: str | None = None

    def current(self) -> Library:
        if self._library is None:
            raise RuntimeError("DatabaseLibraryProvider.start() has not been called")
        return self._library

    @property
    def version(self) -> int | None:
        """The `content_state.version` of the library in service."""
        return self._version

    async def start(self) -> None:
        """Load the library (raising `ContentError` if it is broken) and start polling."""
        version = await self.store.version()
        self._library = await self._load()
        self._version = version
        self._task = asyncio.create_task(self._poll(), name="content-library-refresh")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def refresh(self) -> bool:
        """Reload if the version changed; True if a new library is now in service."""
        try:
            version = await self.store.version()
            if version == self._version:
                return False
            library = await self._load()
        except ContentError as exc:
            self.last_error = str(exc)
            log.error("content library not reloaded, keeping the last good one: %s", exc)
            return False
        except Exception as exc:
            # Whatever the driver raises when the database is away: keep serving.
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("content library not refreshed, database unavailable: %s", type(exc))
            return False
        self._library = library
        self._version = version
        self.last_error = None
        log.info("content library refreshed (version %d)", version)
        return True

    async def _load(self) -> Library:
        report = check_records(await self.store.live_records())
        if report.errors:
            raise ContentError(report.errors)
        return report.library

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.check_interval)
            await self.refresh()
