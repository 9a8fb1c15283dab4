"""The queries the bot needs, and the guarantee behind /forget.

Every write is safe when several handlers (or several replicas on PostgreSQL) run at once:
rows are created with INSERT ... ON CONFLICT DO NOTHING or a unique key, never with a
check-then-insert.

Forgetting (/forget, and the retention sweep) must leave no copy of what a user wrote in the
database files:
- SQLite runs with `secure_delete=ON`, which overwrites deleted rows with zeros; the WAL
  still holds the pages as they were before the delete, so `wal_checkpoint(TRUNCATE)`
  copies the zeroed pages into the database file and empties the WAL.
- PostgreSQL never overwrites a row in place: DELETE marks it dead and a plain VACUUM marks
  its space reusable, compacting the page. Measured on PostgreSQL 15: after DELETE + plain
  VACUUM the text of the page's newest deleted row is still in the page's free space.
  `VACUUM FULL` copies the live rows into new files and truncates the old ones, so the text
  is gone from the table files (the tests read every page and the data folder to check).
  The price is an ACCESS EXCLUSIVE lock on `messages` and `users` while it runs, blocking
  the bot's queries: measured on this project's schema (2 cores), 10,000 messages: 34 ms
  (plain VACUUM: 4 ms); 100,000: 0.35 s; 1,000,000 (276 MB): 4 s. Acceptable for a rare
  /forget and an hourly sweep at this bot's scale; operators with millions of messages can
  sweep less often (`RETENTION_CHECK_SECONDS`). The lock is awaited `VACUUM_LOCK_TIMEOUT`
  at most; past that the failure is logged and the next forget or sweep rewrites the table.
  A rewrite keeps deleted rows that an older transaction could still read, so it is repeated
  until PostgreSQL reports none kept (`_vacuum_full_postgresql`).
  Not covered: the write-ahead log keeps the original insert until its segment is recycled
  and overwritten, and backups and replicas keep what they copied. Operators should keep
  the data directory on an encrypted disk and expire backups within the retention period.
"""

from __future__ import annotations

import asyncio
import logging
import re
from asyncio import Future
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import (
    Connection,
    CursorResult,
    Executable,
    Result,
    Table,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql.elements import TextClause

from bot.nlu.understanding import Understanding
from bot.policy.decision import COOLDOWN
from bot.policy.state import UserState
from bot.safety.risk import assess
from bot.shielding import finish_even_if_cancelled
from bot.storage.database import Database, database_unreachable
from bot.storage.models import DIRECTIONS, Message, ProcessedUpdate, User, utcnow
from bot.storage.turns import MessageRecord, TurnOutcome, TurnRecord, TurnStart

log = logging.getLogger(__name__)

VACUUM_LOCK_TIMEOUT = "5s"
SCRUB_RETRY_SECONDS = 10.0
# What a turn saves from its `UserState` as it is (see `_state_values`).
_SAVED_STATE_COLUMNS = (
    User.country,
    User.campaign,
    User.human_requested,
    User.last_claim,
    User.last_reply_kind,
    User.shown_testimonies,
    User.risk_signals,
    User.risk_level,
    User.risk_reasons,
)
# The columns of `users` that make up a `UserState`, read by every turn; a turn saves the
# above, raises `in_crisis` at most and leaves the moderators' part alone.
_STATE_COLUMNS = (
    User.pseudonym,
    *_SAVED_STATE_COLUMNS,
    User.in_crisis,
    User.handling,
    User.muted,
)
# A turn's reads, built once: building and hashing a statement this size costs about as much
# CPU as running it on SQLite.
_RECENT = and_(Message.user_id == User.id, Message.created_at >= bindparam("since"))
_UPDATE_CLAIMED = exists().where(ProcessedUpdate.update_id == bindparam("update_id"))
_TURN_START = select(
    *_STATE_COLUMNS,
    select(func.count())
    .select_from(Message)
    .where(_RECENT, Message.direction == "in")
    .scalar_subquery()
    .label("recent_incoming"),
    exists()
    .where(_RECENT, Message.direction == "out", Message.kind == COOLDOWN)
    .label("cooldown_noted"),
    _UPDATE_CLAIMED.label("answered_before"),
).where(User.pseudonym == bindparam("pseudonym"))
_HANDLING = select(User.handling).where(User.pseudonym == bindparam("pseudonym"))


def _param(column: Any) -> Any:
    """A bound parameter for `column`'s new value, typed like it (JSON and dates are
    converted); named `new_<column>`, as SQLAlchemy keeps column names for itself."""
    return bindparam(f"new_{column.key}", type_=column.type)


def _user_update(*, with_state: bool) -> Any:
    """`_touch_user`'s UPDATE, built once: the same statement every time, so SQLAlchemy
    compiles it once (a statement built per call was compiled per call, most of a turn's
    commit CPU). Flags and the crisis state are only raised; a missing contact or time
    keeps the stored one."""
    values: dict[Any, Any] = {
        User.last_seen_at: func.coalesce(_param(User.last_seen_at), User.last_seen_at),
        User.risk_flag: or_(User.risk_flag, _param(User.risk_flag)),
        User.crisis_flag: or_(User.crisis_flag, _param(User.crisis_flag)),
    }
    if with_state:
        values |= {column: _param(column) for column in _SAVED_STATE_COLUMNS}
        values |= {
            User.in_crisis: or_(User.in_crisis, _param(User.in_crisis)),
            User.contact: func.coalesce(_param(User.contact), User.contact),
        }
    return (
        update(User)
        .where(User.pseudonym == bindparam("who"))
        .values(values)
        .returning(User.id, User.in_crisis)
    )


_TOUCH_USER = _user_update(with_state=False)
_SAVE_USER = _user_update(with_state=True)


def _insert_or_skip_prepared(model: type[DeclarativeBase], key: str) -> TextClause:
    """INSERT of every column of `model` but its id, doing nothing for a row whose `key` is
    stored; the same SQL on SQLite and PostgreSQL.

    The dialects' own `insert().on_conflict_do_nothing()` cannot be cached by SQLAlchemy, so
    it was compiled again for every turn (measured: a third of a turn's commit CPU); a text
    statement is compiled once. Its parameters are typed like the columns.
    """
    table = model.__table__
    assert isinstance(table, Table)
    columns = [column for column in table.columns if not column.primary_key or column.key == key]
    names = ", ".join(column.name for column in columns)
    params = ", ".join(f":{column.key}" for column in columns)
    # Names of our own tables and columns only, never input.
    sql = f"INSERT INTO {table.name} ({names}) VALUES ({params}) ON CONFLICT ({key}) DO NOTHING"  # noqa: S608
    return text(sql).bindparams(*(bindparam(c.key, type_=c.type) for c in columns))


_CLAIM_UPDATE = _insert_or_skip_prepared(ProcessedUpdate, "update_id")
_INSERT_MESSAGES = _insert_or_skip_prepared(Message, "write_key")
_KEPT_DEAD_ROWS = re.compile(r"(\d+) dead row versions cannot be removed yet")
# The tables holding what a user wrote or what is known about them (moderators' notes too).
_PRIVATE_TABLES = ("messages", "users", "moderator_notes")
# `intent_source` of a message stored while no NLU server answered, and of one classified later.
UNAVAILABLE_SOURCE = "unavailable"
DEFERRED_SOURCE = "deferred"


@dataclass(frozen=True)
class StoredMessage:
    """A row of `messages`, detached from the database."""

    id: int
    user_id: int
    created_at: datetime
    direction: str
    kind: str
    text: str | None
    intent: str | None
    confidence: float | None
    ranking: tuple[dict[str, Any], ...]
    entities: tuple[dict[str, Any], ...]
    intent_source: str | None
    model: str | None
    content_ids: tuple[str, ...]
    flags: tuple[str, ...]
    update_id: int | None
    is_test: bool

    @classmethod
    def from_row(cls, row: Message) -> StoredMessage:
        return cls(
            id=row.id,
            user_id=row.user_id,
            created_at=row.created_at,
            direction=row.direction,
            kind=row.kind,
            text=row.text,
            intent=row.intent,
            confidence=row.confidence,
            ranking=tuple(row.ranking),
            entities=tuple(row.entities),
            intent_source=row.intent_source,
            model=row.model,
            content_ids=tuple(row.content_ids),
            flags=tuple(row.flags),
            update_id=row.update_id,
            is_test=row.is_test,
        )


class Store:
    """What the bot reads and writes, over a `Database` (SQLite or PostgreSQL)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._turn_writes = asyncio.Lock()
        """One group commit at a time (`finish_turn`). SQLite has one writer at a time anyway:
        turns queue here, in the event loop, rather than each holding a pooled connection in
        SQLite's busy handler (which sleeps in steps of up to 100 ms), which left the turns'
        reads waiting for a connection (measured: p95 of the read 89 ms at 30 messages/s).
        On PostgreSQL, turns committed one by one held the pool's connections under load."""
        self._finishing: list[tuple[TurnRecord, Future[TurnOutcome]]] = []
        """Turns waiting for the next group commit."""

    async def start(self) -> None:
        await self.database.start()

    async def close(self) -> None:
        await self.database.close()

    # -- updates ---------------------------------------------------------------------------

    async def claim_update(self, update_id: int) -> bool:
        """Return True for the first caller to claim `update_id`, False for every later one.

        The primary key decides, so two replicas handed the same update cannot both win.
        """
        try:
            async with self.database.session() as session, session.begin():
                await session.execute(
                    insert(ProcessedUpdate).values(update_id=update_id, processed_at=utcnow())
                )
        except IntegrityError:
            return False
        return True

    # -- a conversation turn ----------------------------------------------------------------

    async def begin_turn(
        self, pseudonym: str, *, flood_window_seconds: int, update_id: int | None = None
    ) -> TurnStart:
        """The user's state, their recent messages' count and whether `update_id` was claimed
        already, in one query (two for a user not yet stored); writes nothing.

        An unknown user gets the default state; `finish_turn` creates them.
        """
        params = {
            "pseudonym": pseudonym,
            "since": utcnow() - timedelta(seconds=flood_window_seconds),
            "update_id": update_id or 0,
        }

        def read(connection: Connection) -> TurnStart:
            row = connection.execute(_TURN_START, params).one_or_none()
            if row is None:
                # A user not stored (yet, or any more after /forget) may repeat an update too.
                answered = update_id is not None and bool(
                    connection.scalar(select(_UPDATE_CLAIMED), params)
                )
                return TurnStart(UserState(pseudonym), answered_before=answered)
            return TurnStart(
                _user_state(row),
                int(row.recent_incoming),
                bool(row.cooldown_noted),
                answered_before=update_id is not None and bool(row.answered_before),
            )

        return await self.database.read(read)

    async def finish_turn(self, turn: TurnRecord) -> TurnOutcome:
        """Claim the update, store the messages and the state: all or nothing.

        An update claimed before (Telegram delivered it twice) writes nothing and comes back
        as a duplicate, unless it is `recovered` or a `replay`. The state is saved as
        `save_user` saves it, filled in with what the database derived; the user's moderator
        flags are raised as `record_message` raises them.

        Turns finishing while another commit runs wait for it and then go in one transaction
        together (a group commit): under load, one commit, one disk flush and one connection
        serve many turns. A turn that cannot be written (bad data) is then retried alone, so
        it fails alone; a database that cannot be reached fails the whole group, whose turns
        the write buffer then holds (`ResilientStore`).
        """
        done: Future[TurnOutcome] = asyncio.get_running_loop().create_future()
        self._finishing.append((turn, done))
        async with self._turn_writes:
            if not done.done():  # not written by the group commit before this one
                group, self._finishing = self._finishing, []
                # A writer cancelled halfway (a shutdown) must not leave the others in the
                # group waiting for an outcome that never comes.
                await finish_even_if_cancelled(self._write_turns(group))
        return await done

    async def _write_turns(self, group: list[tuple[TurnRecord, Future[TurnOutcome]]]) -> None:
        """Write `group` in one transaction, settling each turn's future."""
        now = utcnow()
        turns = [turn for turn, _ in group]
        try:
            outcomes = await self.database.write(partial(self._write_group, turns=turns, now=now))
        except Exception as exc:
            if len(group) == 1 or database_unreachable(exc):
                for _, done in group:
                    done.set_exception(exc)
                return
            for turn, done in group:
                try:
                    write = partial(self._write_group, turns=[turn], now=now)
                    done.set_result((await self.database.write(write))[0])
                except Exception as error:
                    done.set_exception(error)
            return
        for (_, done), outcome in zip(group, outcomes, strict=True):
            done.set_result(outcome)

    def _write_group(
        self, connection: Connection, turns: list[TurnRecord], now: datetime
    ) -> list[TurnOutcome]:
        """The turns' claims and users one by one, then all their messages in one INSERT."""
        outcomes: list[TurnOutcome] = []
        rows: list[dict[str, Any]] = []
        for turn in turns:
            outcomes.append(self._write_turn(connection, turn, now, rows))
        if rows:
            connection.execute(_INSERT_MESSAGES, rows)
        return outcomes

    def _write_turn(
        self,
        connection: Connection,
        turn: TurnRecord,
        now: datetime,
        rows: list[dict[str, Any]],
    ) -> TurnOutcome:
        """Claim the turn's update and update its user; its messages go to `rows`."""
        claimed = turn.update_id is None or _claim(connection, turn.update_id, now)
        if not (claimed or turn.recovered or turn.replay):
            return TurnOutcome(duplicate=True)  # nothing of it written: the claim comes first
        user_id = self._touch_user(
            connection,
            turn.pseudonym,
            seen_at=now,
            flags=[flag for message in turn.messages for flag in message.flags],
            state=turn.state,
            contact=turn.contact,
        )
        rows += [_message_values(m, user_id) for m in turn.messages]
        return TurnOutcome()

    async def handling_of(self, pseudonym: str) -> str | None:
        """Who answers the user now ("bot", "waiting", "person"); None for an unknown user."""
        params = {"pseudonym": pseudonym}
        handling: str | None = await self.database.read(lambda c: c.scalar(_HANDLING, params))
        return handling

    def _touch_user(
        self,
        connection: Connection,
        pseudonym: str,
        *,
        seen_at: datetime | None = None,
        flags: Sequence[str] = (),
        state: UserState | None = None,
        contact: str | None = None,
    ) -> int:
        """Update the user's row, creating it first if needed; returns the user's id.

        `seen_at` marks the user as seen then; "risk" and "crisis" in `flags` raise the
        moderator flags (never lowered here); `state` and `contact` are saved as `save_user`
        describes, and `state` is filled in with what the database derived.
        """
        raised = set(flags)
        values: dict[str, Any] = {
            "last_seen_at": seen_at,
            "risk_flag": "risk" in raised,
            "crisis_flag": "crisis" in raised,
        }
        if state is not None:
            # Derived from the crisis state the turn assumes; corrected below in the rare
            # case that the stored one differs (only a moderator lowers it, only a late
            # classification raises it behind the turn's back).
            assumed = assess(state.risk_signals, in_crisis=state.in_crisis)
            values |= _state_values(state, contact)
            values |= {"risk_level": assumed.level, "risk_reasons": list(assumed.reasons)}
        params = {"who": pseudonym} | {f"new_{key}": value for key, value in values.items()}
        # A write first, so that SQLite takes its write lock before reading anything.
        statement = _TOUCH_USER if state is None else _SAVE_USER
        user = connection.execute(statement, params).one_or_none()
        if user is None:
            connection.execute(self._insert_user_if_missing(pseudonym))
            user = connection.execute(statement, params).one()
        if state is not None:
            assessment = assess(state.risk_signals, in_crisis=user.in_crisis)
            if user.in_crisis != state.in_crisis:
                connection.execute(
                    update(User)
                    .where(User.id == user.id)
                    .values(risk_level=assessment.level, risk_reasons=list(assessment.reasons))
                )
            state.in_crisis = user.in_crisis
            state.risk_level = assessment.level
            state.risk_reasons = list(assessment.reasons)
        return int(user.id)

    # -- users -----------------------------------------------------------------------------

    async def load_user(self, pseudonym: str) -> UserState:
        """The user's conversation state, creating the user on first contact."""
        async with self.database.session() as session:
            user = await self._find_user(session, pseudonym)
            if user is None:
                await session.execute(self._insert_user_if_missing(pseudonym))
                await session.commit()
                user = await self._find_user(session, pseudonym)
            assert user is not None
            return _user_state(user)

    async def find_user(self, pseudonym: str) -> UserState | None:
        """The user's conversation state, or None for an unknown user; reads only."""
        async with self.database.session() as session:
            user = await self._find_user(session, pseudonym)
            return None if user is None else _user_state(user)

    async def save_user(self, state: UserState, *, contact: str | None = None) -> None:
        """Persist the conversation state and the risk level derived from it.

        The moderator flags, the handling and the mute are left as they are. Crisis state is
        only ever raised here: a moderator may have closed it while this turn ran, and only a
        moderator closes it (`close_crisis`). The risk level is computed in the same
        transaction from the crisis state as stored, so the two cannot disagree. `contact`
        (an encrypted chat id) replaces the stored one.
        """
        await self.database.write(
            lambda c: self._touch_user(c, state.pseudonym, state=state, contact=contact)
        )

    async def set_campaign(self, pseudonym: str, campaign: str) -> bool:
        """Record the deep-link campaign that brought the user, unless one is recorded already.

        Returns whether it was recorded: the first campaign is the one that counts.
        """
        statement = (
            update(User)
            .where(User.pseudonym == pseudonym, User.campaign.is_(None))
            .values(campaign=campaign)
        )
        async with self.database.session() as session, session.begin():
            await session.execute(self._insert_user_if_missing(pseudonym))
            return _rowcount(await session.execute(statement)) > 0

    # -- messages --------------------------------------------------------------------------

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
        """Store one message and return its id.

        Also marks the user as seen now, and raises the user's moderator flags when `flags`
        holds "risk" or "crisis" (they are never lowered here). A message whose `write_key`
        is already stored is not stored again: the existing row's id is returned, so a write
        replayed from the write buffer or repeated after a crash leaves one row.
        `created_at` (default now) is when the message happened, also for a replayed write.
        """
        message = MessageRecord(
            direction=direction,
            kind=kind,
            text=text,
            created_at=created_at or utcnow(),
            understanding=understanding,
            content_ids=content_ids,
            flags=flags,
            update_id=update_id,
            is_test=is_test,
            write_key=write_key,
        )

        def write(connection: Connection) -> int:
            user_id = self._touch_user(
                connection, pseudonym, seen_at=message.created_at, flags=flags
            )
            insert_message = (
                self._insert_or_skip(Message, ["write_key"])
                .values(_message_values(message, user_id))
                .returning(Message.id)
            )
            message_id = connection.execute(insert_message).scalar_one_or_none()
            if message_id is None:  # written before under the same key
                existing = select(Message.id).where(Message.write_key == write_key)
                message_id = connection.execute(existing).scalar_one()
            return int(message_id)

        return await self.database.write(write)

    async def unclassified_messages(self, limit: int = 100) -> list[tuple[int, str]]:
        """(id, text) of incoming texts stored while the NLU was unavailable, oldest first."""
        statement = (
            select(Message.id, Message.text)
            .where(
                Message.direction == "in",
                Message.intent_source == UNAVAILABLE_SOURCE,
                Message.text.is_not(None),
            )
            .order_by(Message.id)
            .limit(limit)
        )
        async with self.database.session() as session:
            rows = (await session.execute(statement)).all()
            return [(row.id, row.text) for row in rows]

    async def reclassify_message(
        self, message_id: int, understanding: Understanding, flags: Sequence[str]
    ) -> bool:
        """Store a late understanding of a message that was stored as unavailable.

        Only a message still marked unavailable is changed (another replica may have been
        first); the user's moderator flags are raised as `record_message` would have, and a
        crisis puts the user in crisis state, so that the next turn gets crisis care.
        Returns whether the message was changed.
        """
        values: dict[str, Any] = {
            "intent": understanding.intent,
            "confidence": understanding.confidence,
            "ranking": understanding.ranking_json(),
            "entities": understanding.entities_json(),
            "intent_source": (
                understanding.source if understanding.source == "safety_net" else DEFERRED_SOURCE
            ),
            "model": understanding.model,
            "flags": list(flags),
        }
        statement = (
            update(Message)
            .where(Message.id == message_id, Message.intent_source == UNAVAILABLE_SOURCE)
            .values(**values)
            .returning(Message.user_id)
        )
        async with self.database.session() as session, session.begin():
            user_id = (await session.execute(statement)).scalar_one_or_none()
            if user_id is None:
                return False
            raised: dict[str, Any] = {}
            if "risk" in flags:
                raised["risk_flag"] = True
            if "crisis" in flags:
                raised["crisis_flag"] = True
                raised["in_crisis"] = True
            if raised:
                await session.execute(update(User).where(User.id == user_id).values(**raised))
        return True

    async def messages_for(self, pseudonym: str) -> list[StoredMessage]:
        """Every message stored for the user, oldest first."""
        statement = (
            select(Message)
            .join(User, User.id == Message.user_id)
            .where(User.pseudonym == pseudonym)
            .order_by(Message.id)
        )
        async with self.database.session() as session:
            rows = (await session.scalars(statement)).all()
            return [StoredMessage.from_row(row) for row in rows]

    async def user_count(self) -> int:
        async with self.database.session() as session:
            return (await session.scalar(select(func.count()).select_from(User))) or 0

    async def message_count(self) -> int:
        async with self.database.session() as session:
            return (await session.scalar(select(func.count()).select_from(Message))) or 0

    # -- deletion --------------------------------------------------------------------------

    async def forget_user(self, pseudonym: str) -> int:
        """Delete the user and every message of theirs, leaving no copy in the database files.

        Returns the number of messages deleted (0 for an unknown user). See the module
        docstring for what "no copy" covers on each backend.
        """
        user_id = select(User.id).where(User.pseudonym == pseudonym).scalar_subquery()
        async with self.database.session() as session, session.begin():
            # Messages first, to count them; ON DELETE CASCADE catches one recorded meanwhile.
            deleted = _rowcount(
                await session.execute(delete(Message).where(Message.user_id == user_id))
            )
            forgotten = _rowcount(
                await session.execute(delete(User).where(User.pseudonym == pseudonym))
            )
        if not forgotten:
            return 0
        await self._scrub()
        log.info("forgot a user and %d messages", deleted)
        return deleted

    async def delete_expired(self, older_than: datetime) -> int:
        """Apply the retention period; returns the number of messages deleted.

        Deletes messages created before `older_than`, then users who have no message left and
        were last seen before it, and the record of updates processed before it (Telegram
        redelivers an update for a day at most).
        """
        if older_than.tzinfo is None:
            raise ValueError("older_than must be a timezone-aware datetime")
        async with self.database.session() as session, session.begin():
            deleted = _rowcount(
                await session.execute(delete(Message).where(Message.created_at < older_than))
            )
            deleted_users = _rowcount(
                await session.execute(
                    delete(User).where(
                        User.last_seen_at < older_than,
                        ~exists().where(Message.user_id == User.id),
                    )
                )
            )
            await session.execute(
                delete(ProcessedUpdate).where(ProcessedUpdate.processed_at < older_than)
            )
        if deleted or deleted_users:
            await self._scrub()
            log.info("retention deleted %d messages and %d users", deleted, deleted_users)
        return deleted

    async def _scrub(self) -> None:
        """Remove the copies that deleted rows leave behind (see the module docstring)."""
        if self.database.dialect == "sqlite":
            await self._checkpoint_sqlite()
        elif self.database.dialect == "postgresql":
            await self._vacuum_full_postgresql()

    async def _checkpoint_sqlite(self) -> None:
        async with self.database.engine.connect() as connection:
            busy, _, _ = (await connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")).one()
        if busy:
            # A reader still needs the old pages; the next forget or sweep checkpoints again.
            log.warning("the SQLite WAL could not be emptied: deleted rows remain in it for now")

    async def _vacuum_full_postgresql(self) -> None:
        """Rewrite the private tables until no deleted row is carried into the new files.

        VACUUM FULL copies a deleted row along while some transaction that started before
        the delete might still read it ("recently dead"): autovacuum, another database's
        CREATE DATABASE, or a long query holds such a snapshot for a moment. /forget then
        left the text on disk in about one run in five on a busy machine. VERBOSE reports
        those rows ("N dead row versions cannot be removed yet"), so the rewrite is repeated
        until it reports none, for `SCRUB_RETRY_SECONDS` at most; past that the failure is
        logged and the next forget or sweep rewrites again.
        """
        # VACUUM cannot run inside a transaction block.
        async with self.database.engine.connect() as connection:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            kept: list[int] = []

            def listen(_: object, message: Any) -> None:
                found = _KEPT_DEAD_ROWS.search(str(getattr(message, "detail", "") or ""))
                if found:
                    kept.append(int(found.group(1)))

            driver.add_log_listener(listen)  # type: ignore[union-attr]
            await connection.exec_driver_sql(f"SET lock_timeout = '{VACUUM_LOCK_TIMEOUT}'")
            deadline = asyncio.get_running_loop().time() + SCRUB_RETRY_SECONDS
            try:
                while True:
                    kept.clear()
                    await connection.exec_driver_sql(
                        f"VACUUM (FULL, VERBOSE) {', '.join(_PRIVATE_TABLES)}"
                    )
                    # Notices arrive with the command's completion; let the listener run.
                    await asyncio.sleep(0)
                    if not any(kept):
                        return
                    if asyncio.get_running_loop().time() >= deadline:
                        log.warning(
                            "VACUUM FULL kept %d deleted rows that older transactions can "
                            "still see: they stay in the table files until the next scrub",
                            sum(kept),
                        )
                        return
                    await asyncio.sleep(0.2)
            except DBAPIError as exc:
                log.warning("VACUUM FULL failed, deleted rows remain in the table files: %s", exc)
            finally:
                driver.remove_log_listener(listen)  # type: ignore[union-attr]
                await connection.exec_driver_sql("RESET lock_timeout")

    # -- helpers ---------------------------------------------------------------------------

    async def _find_user(self, session: AsyncSession, pseudonym: str) -> User | None:
        result = await session.execute(select(User).where(User.pseudonym == pseudonym))
        return result.scalar_one_or_none()

    def _insert_or_skip(
        self, model: type[DeclarativeBase], keys: list[str]
    ) -> postgresql.Insert | sqlite.Insert:
        """INSERT into `model`'s table that does nothing for a row whose `keys` are stored."""
        if self.database.dialect == "postgresql":
            return postgresql.insert(model).on_conflict_do_nothing(index_elements=keys)
        return sqlite.insert(model).on_conflict_do_nothing(index_elements=keys)

    def _insert_user_if_missing(self, pseudonym: str) -> Executable:
        now = utcnow()
        values: dict[str, Any] = {
            "pseudonym": pseudonym,
            "created_at": now,
            "last_seen_at": now,
            "in_crisis": False,
            "human_requested": False,
            "shown_testimonies": [],
            "risk_flag": False,
            "crisis_flag": False,
            "risk_level": "none",
            "risk_reasons": [],
            "risk_signals": {},
            "handling": "bot",
            "muted": False,
        }
        return self._insert_or_skip(User, ["pseudonym"]).values(**values)


def _claim(connection: Connection, update_id: int, now: datetime) -> bool:
    params = {"update_id": update_id, "processed_at": now}
    return _rowcount(connection.execute(_CLAIM_UPDATE, params)) == 1


def _state_values(state: UserState, contact: str | None) -> dict[str, Any]:
    """The columns a turn saves from `state`: the policy's memory, never the moderators' part.

    Crisis state is only ever raised (a moderator closes it); `contact` (the chat id,
    sealed afresh every turn, so a rotated CONTACT_SECRET heals on the next message)
    replaces the stored one when given. The keys name `_SAVE_USER`'s parameters.
    """
    return {
        "country": state.country,
        "campaign": state.campaign,
        "human_requested": state.human_requested,
        "last_claim": state.last_claim,
        "last_reply_kind": state.last_reply_kind,
        "shown_testimonies": list(state.shown_testimonies),
        "risk_signals": dict(state.risk_signals),
        "in_crisis": state.in_crisis,
        "contact": contact,
    }


def _message_values(message: MessageRecord, user_id: int) -> dict[str, Any]:
    """A `messages` row; every row has every column, so several go in one INSERT."""
    if message.direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'in' or 'out', not {message.direction!r}")
    understanding = message.understanding
    return {
        "user_id": user_id,
        "created_at": message.created_at,
        "direction": message.direction,
        "kind": message.kind,
        "text": message.text,
        "content_ids": list(message.content_ids),
        "flags": list(message.flags),
        "update_id": message.update_id,
        "is_test": message.is_test,
        "write_key": message.write_key,
        "intent": None if understanding is None else understanding.intent,
        "confidence": None if understanding is None else understanding.confidence,
        "ranking": [] if understanding is None else understanding.ranking_json(),
        "entities": [] if understanding is None else understanding.entities_json(),
        "intent_source": None if understanding is None else understanding.source,
        "model": None if understanding is None else understanding.model,
    }


def _user_state(user: Any) -> UserState:
    """A `UserState` from a `User` or a row of `_STATE_COLUMNS`."""
    return UserState(
        pseudonym=user.pseudonym,
        country=user.country,
        campaign=user.campaign,
        in_crisis=user.in_crisis,
        human_requested=user.human_requested,
        last_claim=user.last_claim,
        last_reply_kind=user.last_reply_kind,
        shown_testimonies=list(user.shown_testimonies),
        risk_signals=dict(user.risk_signals),
        risk_level=user.risk_level,
        risk_reasons=list(user.risk_reasons),
        handling=user.handling,
        muted=user.muted,
    )


def _rowcount(result: Result[Any]) -> int:
    """The number of rows an INSERT, UPDATE or DELETE matched."""
    assert isinstance(result, CursorResult)
    return result.rowcount
