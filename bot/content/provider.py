"""Serving the current content library, reloaded when its files change.

The content team edits `responses/` while the bot runs; a change must reach users without a
restart, and a broken edit must never take the bot down: the last good library stays in
service and the error is logged with file and line.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from bot.content.loader import ContentError, load_library
from bot.content.model import Library

log = logging.getLogger(__name__)


class LibraryProvider:
    """Hands out the library, checking the files' modification times at most every few seconds."""

    def __init__(self, directory: Path, check_interval: float = 2.0) -> None:
        self.directory = directory
        self.check_interval = check_interval
        self._library = load_library(directory)
        self._stamp = self._files_stamp()
        self._checked_at = time.monotonic()
        self.last_error: str | None = None

    def current(self) -> Library:
        now = time.monotonic()
        if now - self._checked_at >= self.check_interval:
            self._checked_at = now
            self._reload_if_changed()
        return self._library

    def _files_stamp(self) -> tuple[tuple[str, float, int], ...]:
        return tuple(
            (p.name, p.stat().st_mtime, p.stat().st_size)
            for p in sorted(self.directory.glob("*.y*ml"))
        )

    def _reload_if_changed(self) -> None:
        stamp = self._files_stamp()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            self._library = load_library(self.directory)
        except ContentError as exc:
            self.last_error = str(exc)
            log.error("content library not reloaded, keeping the last good one: %s", exc)
            return
        self.last_error = None
        log.info("content library reloaded from %s", self.directory)
