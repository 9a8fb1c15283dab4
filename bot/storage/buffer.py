"""The write buffer: database writes kept in a file while the database is unavailable.

When PostgreSQL is unreachable or SQLite is locked, the bot keeps answering; what it would
have written (messages, user state, claimed updates, forget requests) is appended here, one
JSON object a line, and `bot.storage.resilient` writes it to the database, in order, when the
database is back. Each append is fsync'd before the bot moves on, so a crash loses nothing
that was buffered.

The file holds what users wrote, so it gets the database's protections: it is readable by
the bot's account only (0600, in a 0700 folder), a user's /forget removes their entries
from it at once, and it is emptied (truncated) as soon as the database has everything. It is
bounded by `max_bytes`: past that, new writes are refused (and counted by the caller)
rather than filling the disk.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Entry = dict[str, Any]


class WriteBuffer:
    """An append-only, fsync'd, size-bounded list of pending writes in one file."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._entries: list[Entry] = []
        self._sizes: list[int] = []
        self._fd: int | None = None

    def open(self) -> None:
        """Create the file if needed and load what a previous run left in it."""
        if self._fd is not None:
            return
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.path.exists():
            self._load()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @property
    def entries(self) -> list[Entry]:
        """The pending writes, oldest first (a copy)."""
        return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        return sum(self._sizes)

    def append(self, entry: Entry) -> bool:
        """Add `entry` durably; False (nothing written) when the buffer is full."""
        line = _encode(entry)
        if self.size_bytes + len(line) > self.max_bytes:
            return False
        fd = self._require_fd()
        os.write(fd, line)
        os.fsync(fd)
        self._entries.append(entry)
        self._sizes.append(len(line))
        return True

    def discard(self, written: list[Entry]) -> None:
        """Forget the entries in `written` (the database has them now), by identity."""
        if not written:
            return
        done = {id(entry) for entry in written}
        self.remove(lambda entry: id(entry) in done)

    def remove(self, matches: Callable[[Entry], bool]) -> int:
        """Delete every entry for which `matches` is true from memory and disk; how many."""
        kept = [(e, n) for e, n in zip(self._entries, self._sizes, strict=True) if not matches(e)]
        removed = len(self._entries) - len(kept)
        if removed:
            self._entries = [e for e, _ in kept]
            self._sizes = [n for _, n in kept]
            self._rewrite()
        return removed

    def _load(self) -> None:
        torn = 0
        with self.path.open("rb") as handle:
            for raw in handle:
                try:
                    entry = json.loads(raw)
                except ValueError:
                    torn += 1  # a line cut short by a power loss: it was never acknowledged
                    continue
                if isinstance(entry, dict):
                    self._entries.append(entry)
                    self._sizes.append(len(raw))
        if torn:
            log.warning("write buffer: skipped %d unreadable line(s) in %s", torn, self.path)
        if self._entries:
            log.warning("write buffer: %d write(s) left by the last run", len(self._entries))

    def _rewrite(self) -> None:
        """Replace the file by the entries still pending; an empty buffer is truncated."""
        fd = self._require_fd()
        if not self._entries:
            os.ftruncate(fd, 0)
            os.fsync(fd)
            return
        temporary = self.path.with_name(self.path.name + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        out = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(out, b"".join(_encode(entry) for entry in self._entries))
            os.fsync(out)
        finally:
            os.close(out)
        os.replace(temporary, self.path)
        _fsync_directory(self.path.parent)
        os.close(fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND, 0o600)

    def _require_fd(self) -> int:
        if self._fd is None:
            raise RuntimeError("WriteBuffer.open() was not called")
        return self._fd


def _encode(entry: Entry) -> bytes:
    # ASCII escapes keep any text (NULs, lone surrogates) on one valid line.
    return (json.dumps(entry, ensure_ascii=True, separators=(",", ":")) + "\n").encode()


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
