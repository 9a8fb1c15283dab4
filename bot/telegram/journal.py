"""The update journal: every update polled from Telegram is on disk until it is handled.

Telegram forgets an update once the next getUpdates confirms it, and python-telegram-bot
confirms a batch as soon as it has queued it, long before the bot has answered. Killed at
that moment (SIGKILL, out of memory, a power cut), the bot would lose every update it had
queued or was answering. So each polled update is appended here before it enters the
queue (written at once; fsync'd in the background within milliseconds, so that the event
loop never waits on the disk) and marked done when its processing ends; at start-up the
updates with no mark are processed again, first, in the order they came. An update whose
processing had begun is then answered after the restart: `FrontEnd.respond` lets a recovered
update through even though the killed run claimed it, and message write keys keep its
records single. A turn sends its reply before it commits its records (`Conversation.handle`),
so a reply that reached Telegram is marked `sent` at once: a recovered update with that mark
is recorded again but not answered again.

Privacy: the journal holds what users wrote and their chat ids (needed to answer them), for
as long as an update waits; the names Telegram sends are removed before writing. The file
is 0600 in DATA_DIR and is emptied whenever no update is waiting, which on a running bot
is most of the time.

Not covered: the few microseconds between a reply reaching Telegram and its sent mark (an
update killed exactly there is answered twice after the restart), and a power cut in the
milliseconds before the background fsync (those updates are lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from telegram import Update

log = logging.getLogger(__name__)

_COMPACT_BYTES = 4_000_000
_NAME_FIELDS = ("first_name", "last_name", "username")


class UpdateJournal:
    """Received-but-unfinished updates in an append-only file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pending: dict[int, dict[str, Any]] = {}
        self._recovered: set[int] = set()
        self._sent: set[int] = set()
        """Pending updates whose reply reached Telegram."""
        self._fd: int | None = None
        self._size = 0
        self._sync_requested = False

    def open(self) -> list[dict[str, Any]]:
        """Open the journal; returns the updates a previous run left unfinished, in order."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        left: dict[int, dict[str, Any]] = {}
        sent: set[int] = set()
        if self.path.exists():
            with self.path.open("rb") as handle:
                for raw in handle:
                    try:
                        record = json.loads(raw)
                    except ValueError:
                        continue  # cut short by a power loss: that update was never confirmed
                    if "done" in record:
                        left.pop(int(record["done"]), None)
                    elif "sent" in record:
                        sent.add(int(record["sent"]))
                    elif isinstance(record.get("update"), dict):
                        update = record["update"]
                        left[int(update["update_id"])] = update
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._pending = dict(left)
        self._recovered = set(left)
        self._sent = sent & set(left)
        self._rewrite()
        if left:
            log.warning("update journal: %d update(s) left unanswered by the last run", len(left))
        return list(left.values())

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def received(self, update: Update) -> None:
        """Write `update` durably; call before the next getUpdates can confirm it."""
        if update.update_id in self._pending or self._fd is None:
            return
        data = _without_names(update.to_dict())
        self._pending[update.update_id] = data
        # Written at once: a killed process loses nothing the kernel has. The fdatasync (for
        # a power cut) runs in a thread, coalesced, so the event loop never waits on the disk.
        self._append({"update": data}, sync=False)
        self._sync_soon()

    def sent(self, update_id: int) -> None:
        """The update's reply reached Telegram; its records may not be committed yet."""
        if update_id in self._pending and self._fd is not None:
            self._sent.add(update_id)
            self._append({"sent": update_id}, sync=False)  # survives a kill of the process

    def done(self, update_id: int) -> None:
        """The update's processing ended (answered, skipped or failed with the safe reply)."""
        self._recovered.discard(update_id)
        self._sent.discard(update_id)
        if self._pending.pop(update_id, None) is None or self._fd is None:
            return
        if not self._pending:
            os.ftruncate(self._fd, 0)  # nothing waits: nothing of what users wrote stays
            self._size = 0
        elif self._size > _COMPACT_BYTES:
            self._rewrite()
        else:
            # No fsync: the mark survives a crash of the process; after a power cut the
            # update is answered again, which the claim check mostly catches.
            self._append({"done": update_id}, sync=False)

    def _sync_soon(self) -> None:
        if self._sync_requested:
            return
        self._sync_requested = True
        asyncio.get_running_loop().run_in_executor(None, self._sync_now)

    def _sync_now(self) -> None:
        """In a worker thread: flush what was appended so far to the disk."""
        self._sync_requested = False  # an append after this point asks for another sync
        fd = self._fd
        if fd is not None:
            with contextlib.suppress(OSError):  # the file was just rewritten or closed
                os.fdatasync(fd)

    def is_recovered(self, update_id: int) -> bool:
        """An update from the last run's journal, not yet handled by this run."""
        return update_id in self._recovered

    def was_sent(self, update_id: int) -> bool:
        """A recovered update whose reply the last run had sent before it was killed."""
        return update_id in self._recovered and update_id in self._sent

    def _append(self, record: dict[str, Any], *, sync: bool) -> None:
        assert self._fd is not None
        line = (json.dumps(record, ensure_ascii=True, separators=(",", ":")) + "\n").encode()
        os.write(self._fd, line)
        if sync:
            os.fdatasync(self._fd)
        self._size += len(line)

    def _rewrite(self) -> None:
        """Keep only the pending updates and their sent marks (usually none: truncated)."""
        assert self._fd is not None
        records: list[dict[str, Any]] = [{"update": u} for u in self._pending.values()]
        records += [{"sent": update_id} for update_id in sorted(self._sent)]
        lines = b"".join(
            (json.dumps(r, ensure_ascii=True, separators=(",", ":")) + "\n").encode()
            for r in records
        )
        temporary = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, lines)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, self.path)
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND, 0o600)
        self._size = len(lines)


class JournalingQueue(asyncio.Queue[object]):
    """python-telegram-bot's update queue, writing each polled update to the journal first."""

    def __init__(self, journal: UpdateJournal) -> None:
        super().__init__()
        self.journal = journal

    async def put(self, item: object) -> None:
        if isinstance(item, Update):
            self.journal.received(item)
        await super().put(item)


def _without_names(data: Any) -> Any:
    """The update without the names Telegram includes for the sender and the chat."""
    if isinstance(data, dict):
        return {
            key: ("" if key == "first_name" else _without_names(value))
            for key, value in data.items()
            if key not in _NAME_FIELDS[1:]
        }
    if isinstance(data, list):
        return [_without_names(item) for item in data]
    return data
