"""A store that keeps the bot answering while the database is unavailable.

PostgreSQL stopped or unreachable, SQLite locked by another process: `ResilientStore` answers
the conversation's reads and writes anyway, and loses nothing.

- Writes (messages, user state, claims, forget requests) that fail because the database is
  unreachable go to the on-disk `WriteBuffer`, and so does every later write until the
  buffer is empty again, so that the database receives them in the order they happened. A
  background flusher retries every `retry_seconds` and writes them in order. Each message
  carries a write key, so a write replayed after a crash (or that reached the database just
  before the connection broke) is stored once.
- Reads of a user's state: the state saved while degraded is kept in memory until the
  database has it; an unreachable database gives the default state (a new user). The
  crisis safety net works on the message text, so it comes first either way.
- Claimed updates are also remembered in memory (the most recent `_RECENT_CLAIMS`), so an
  update Telegram delivers twice is answered once while the database is down, and after it
  returns, before the buffered claim reaches it.

Any other database error (a corrupt file, a bug) is raised as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from bot.nlu.understanding import Entity, IntentScore, Understanding
from bot.policy.state import UserState
from bot.safety.risk import assess
from bot.storage.buffer import Entry, WriteBuffer
from bot.storage.database import Database, database_unreachable
from bot.storage.models import utcnow
from bot.storage.store import Store
from bot.storage.turns import MessageRecord, TurnOutcome, TurnRecord, TurnStart

log = logging.getLogger(__name__)

_RECENT_CLAIMS = 10_000
_CLOSE_FLUSH_SECONDS = 5.0


class ResilientStore(Store):
    """`Store` with a write buffer and in-memory fallbacks for an unavailable database."""

    def __init__(self, database: Database, buffer: WriteBuffer, retry_seconds: float = 2.0) -> None:
        super().__init__(database)
        self.buffer = buffer
        self.retry_seconds = retry_seconds
        self.lost_writes = 0
        """Writes refused because the buffer was full (each one is logged as an error)."""
        self._states: dict[str, UserState] = {}
        self._claims: OrderedDict[int, None] = OrderedDict()
        self._flusher: asyncio.Task[None] | None = None
        self._drained = asyncio.Event()
        self._drained.set()

    @property
    def degraded(self) -> bool:
        """True while writes wait in the buffer for the database."""
        return len(self.buffer) > 0

    async def start(self) -> None:
        await super().start()
        self.open_buffer()

    def open_buffer(self) -> None:
        """Open the buffer; writes a previous run left in it are flushed in the background."""
        self.buffer.open()
        if self.degraded:
            self._start_flusher()

    async def close(self) -> None:
        """Stop; buffered writes get a last chance (`_CLOSE_FLUSH_SECONDS`), else stay on disk."""
        if self.degraded and self._flusher is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_CLOSE_FLUSH_SECONDS):
                    await self._drained.wait()
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        self.buffer.close()
        await super().close()

    async def wait_until_flushed(self) -> None:
        """Wait until every buffered write is in the database (wrap it in a timeout)."""
        await self._drained.wait()

    # -- the conversation's operations -----------------------------------------------------

    async def begin_turn(
        self, pseudonym: str, *, flood_window_seconds: int, update_id: int | None = None
    ) -> TurnStart:
        if update_id is not None and update_id in self._claims:
            return TurnStart(UserState(pseudonym), answered_before=True)
        cached = self._states.get(pseudonym)
        if cached is not None:
            return TurnStart(_copy_state(cached))
        try:
            return await super().begin_turn(
                pseudonym, flood_window_seconds=flood_window_seconds, update_id=update_id
            )
        except Exception as exc:
            if not database_unreachable(exc):
                raise
            log.warning("database unavailable (%s): default state for a user", _name(exc))
            return TurnStart(UserState(pseudonym))

    async def finish_turn(self, turn: TurnRecord) -> TurnOutcome:
        """Write the turn; while the database is unavailable, to the buffer as one entry."""
        if turn.update_id is not None and turn.update_id in self._claims and not turn.recovered:
            return TurnOutcome(duplicate=True)
        if not self.degraded:
            try:
                outcome = await super().finish_turn(turn)
            except Exception as exc:
                if not database_unreachable(exc):
                    raise
                self._degrade(exc)
            else:
                if turn.update_id is not None:
                    self._remember_claim(turn.update_id)
                return outcome
        if turn.update_id is not None:
            self._remember_claim(turn.update_id)
        self._buffer(_turn_entry(turn))
        if turn.state is not None:
            self._hold_state(turn.state)
        return TurnOutcome()

    async def claim_update(self, update_id: int) -> bool:
        if update_id in self._claims:
            return False
        entry: Entry = {"op": "claim", "update_id": update_id}
        if not self.degraded:
            try:
                won = await super().claim_update(update_id)
            except Exception as exc:
                if not database_unreachable(exc):
                    raise
                self._degrade(exc)
            else:
                self._remember_claim(update_id)
                return won
        self._remember_claim(update_id)
        self._buffer(entry)
        return True

    async def load_user(self, pseudonym: str) -> UserState:
        cached = self._states.get(pseudonym)
        if cached is not None:
            return _copy_state(cached)
        try:
            if self.degraded:  # read only: creating the user is a write, and waits its turn
                found = await self.find_user(pseudonym)
                return found if found is not None else UserState(pseudonym)
            return await super().load_user(pseudonym)
        except Exception as exc:
            if not database_unreachable(exc):
                raise
            log.warning("database unavailable (%s): default state for a user", _name(exc))
            return UserState(pseudonym)

    async def save_user(self, state: UserState, *, contact: str | None = None) -> None:
        if not self.degraded:
            try:
                # On `state` itself: the save fills in what the database derived (risk level
                # and reasons, crisis state as stored), which the turn's alerts read.
                await Store.save_user(self, state, contact=contact)
                return
            except Exception as exc:
                if not database_unreachable(exc):
                    raise
                self._degrade(exc)
        self._buffer({"op": "user", "state": asdict(state), "contact": contact})
        self._hold_state(state)

    def _hold_state(self, state: UserState) -> None:
        """Keep a buffered state for the user's next turns, filled in with what the database
        would have derived (the flusher's write derives it again)."""
        assessment = assess(state.risk_signals, in_crisis=state.in_crisis)
        state.risk_level = assessment.level
        state.risk_reasons = list(assessment.reasons)
        self._states[state.pseudonym] = _copy_state(state)

    async def record_message(
        self,
        pseudonym: str,
        *,
        direction: str,
        kind: str,
        text: str | None,
        understanding: Understanding | None = None,
        content_ids: Sequence[str] = (),
        flags: Sequence[str] = (),
        update_id: int | None = None,
        is_test: bool = False,
        write_key: str | None = None,
        created_at: datetime | None = None,
    ) -> int:
        """Store one message; returns its id, or 0 when it went to the write buffer."""
        entry: Entry = {
            "op": "message",
            "pseudonym": pseudonym,
            "direction": direction,
            "kind": kind,
            "text": text,
            "understanding": None if understanding is None else asdict(understanding),
            "content_ids": list(content_ids),
            "flags": list(flags),
            "update_id": update_id,
            "is_test": is_test,
            "write_key": write_key or uuid.uuid4().hex,
            "created_at": (created_at or utcnow()).isoformat(),
        }
        if not self.degraded:
            try:
                return await self._apply(entry)
            except Exception as exc:
                if not database_unreachable(exc):
                    raise
                self._degrade(exc)
        self._buffer(entry)
        return 0

    async def forget_user(self, pseudonym: str) -> int:
        """Forget the user; while degraded, their buffered writes are deleted at once."""
        self._states.pop(pseudonym, None)
        removed = self.buffer.remove(lambda entry: _pseudonym_of(entry) == pseudonym)
        entry: Entry = {"op": "forget", "pseudonym": pseudonym}
        if not self.degraded:
            try:
                return await super().forget_user(pseudonym) + removed
            except Exception as exc:
                if not database_unreachable(exc):
                    raise
                self._degrade(exc)
        self._buffer(entry)
        return removed

    # -- buffering and flushing ------------------------------------------------------------

    def _degrade(self, exc: BaseException) -> None:
        if not self.degraded:
            log.warning(
                "database unavailable (%s): answering on, writes go to the buffer %s",
                _name(exc),
                self.buffer.path,
            )

    def _buffer(self, entry: Entry) -> None:
        if not self.buffer.append(entry):
            self.lost_writes += 1
            log.error(
                "write buffer full (%d bytes): a %s write is lost (%d so far)",
                self.buffer.max_bytes,
                entry["op"],
                self.lost_writes,
            )
            return
        self._start_flusher()

    def _start_flusher(self) -> None:
        self._drained.clear()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_loop(), name="write-buffer-flusher")

    async def _flush_loop(self) -> None:
        """Write the buffer to the database, oldest first, until it is empty."""
        while self.degraded:
            written: list[Entry] = []
            try:
                for entry in self.buffer.entries:
                    await self._apply(entry)
                    written.append(entry)
            except Exception as exc:
                if not database_unreachable(exc):
                    # A write the database refuses for good would block every later one.
                    log.error(
                        "write buffer: the database refused a %s write (%s); dropped",
                        entry["op"],
                        _name(exc),
                    )
                    written.append(entry)
                    self.lost_writes += 1
                else:
                    log.info("write buffer: database still unavailable (%s)", _name(exc))
                    self.buffer.discard(written)
                    await asyncio.sleep(self.retry_seconds)
                    continue
            self.buffer.discard(written)
        self._states.clear()
        log.info("write buffer: the database has every buffered write")
        self._drained.set()

    async def _apply(self, entry: Entry) -> int:
        """Write one buffered entry to the database; idempotent."""
        op = entry["op"]
        if op == "message":
            return await Store.record_message(
                self,
                entry["pseudonym"],
                direction=entry["direction"],
                kind=entry["kind"],
                text=entry["text"],
                understanding=_understanding(entry["understanding"]),
                content_ids=entry["content_ids"],
                flags=entry["flags"],
                update_id=entry["update_id"],
                is_test=entry["is_test"],
                write_key=entry["write_key"],
                created_at=datetime.fromisoformat(entry["created_at"]),
            )
        if op == "turn":
            await Store.finish_turn(self, _turn_from_entry(entry))
        elif op == "user":
            await Store.save_user(self, UserState(**entry["state"]), contact=entry.get("contact"))
        elif op == "claim":
            await Store.claim_update(self, entry["update_id"])  # False if already there: fine
        elif op == "forget":
            await Store.forget_user(self, entry["pseudonym"])
        else:
            raise ValueError(f"unknown write buffer entry {op!r}")
        return 0

    def _remember_claim(self, update_id: int) -> None:
        self._claims[update_id] = None
        while len(self._claims) > _RECENT_CLAIMS:
            self._claims.popitem(last=False)


def _pseudonym_of(entry: Entry) -> str | None:
    if entry["op"] == "user":
        return str(entry["state"]["pseudonym"])
    pseudonym = entry.get("pseudonym")
    return None if pseudonym is None else str(pseudonym)


def _turn_entry(turn: TurnRecord) -> Entry:
    """A turn as one write buffer entry (JSON); message write keys make its replay single."""
    return {
        "op": "turn",
        "pseudonym": turn.pseudonym,
        "update_id": turn.update_id,
        "state": None if turn.state is None else asdict(turn.state),
        "contact": turn.contact,
        "messages": [
            {
                "direction": m.direction,
                "kind": m.kind,
                "text": m.text,
                "created_at": m.created_at.isoformat(),
                "understanding": None if m.understanding is None else asdict(m.understanding),
                "content_ids": list(m.content_ids),
                "flags": list(m.flags),
                "update_id": m.update_id,
                "is_test": m.is_test,
                "write_key": m.write_key or uuid.uuid4().hex,
            }
            for m in turn.messages
        ],
    }


def _turn_from_entry(entry: Entry) -> TurnRecord:
    messages = tuple(
        MessageRecord(
            **m
            | {
                "created_at": datetime.fromisoformat(m["created_at"]),
                "understanding": _understanding(m["understanding"]),
            }
        )
        for m in entry["messages"]
    )
    state = entry["state"]
    return TurnRecord(
        pseudonym=entry["pseudonym"],
        messages=messages,
        state=None if state is None else UserState(**state),
        contact=entry["contact"],
        update_id=entry["update_id"],
        replay=True,
    )


def _understanding(data: dict[str, Any] | None) -> Understanding | None:
    if data is None:
        return None
    return Understanding(
        text=data["text"],
        intent=data["intent"],
        confidence=data["confidence"],
        ranking=tuple(IntentScore(**score) for score in data["ranking"]),
        entities=tuple(Entity(**entity) for entity in data["entities"]),
        source=data["source"],
        model=data["model"],
    )


def _copy_state(state: UserState) -> UserState:
    return UserState(**asdict(state))


def _name(exc: BaseException) -> str:
    """The error's type only: a driver's message may quote a query's parameters (user text)."""
    return type(exc).__name__
