"""One conversation turn: update -> understanding -> decision -> content -> reply -> record.

Every front end (Telegram, the terminal chat, the tests) goes through `Conversation.handle`,
so what is stored and what is said cannot differ between them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from bot.content.database_provider import LibrarySource
from bot.escalation.service import Escalation
from bot.nlu.client import NLUClient
from bot.nlu.understanding import Understanding
from bot.observability import metrics
from bot.policy.compose import Reply, ReplyContext, compose, wait_phrase
from bot.policy.decision import (
    FORGET_KINDS,
    PERSON,
    SILENT,
    Button,
    Command,
    Message,
    NonText,
    ReplyPlan,
    decide,
)
from bot.policy.state import UserState
from bot.safety.risk import record_signals
from bot.settings import Settings
from bot.shielding import finish_even_if_cancelled
from bot.storage.database import database_unreachable
from bot.storage.models import utcnow
from bot.storage.store import Store
from bot.storage.turns import MessageRecord, TurnRecord, flood_status

log = logging.getLogger(__name__)

_CAMPAIGN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class TextIn:
    """A text message as the user typed it, before cleaning and understanding."""

    text: str


Incoming = TextIn | Command | Button | NonText


def clean_user_text(text: str, max_chars: int) -> tuple[str, bool]:
    """Drop NULs and control characters (keeping line breaks), trim, cap the length.

    Returns the clean text and whether it was cut; a cut message is still stored and answered.
    """
    kept = "".join(
        ch
        for ch in text
        if ch in "\n\t" or unicodedata.category(ch) not in {"Cc", "Cs", "Co", "Cn"}
    ).strip()
    if len(kept) > max_chars:
        return kept[:max_chars], True
    return kept, False


def campaign_from_payload(payload: str | None) -> str | None:
    """A deep-link payload is a campaign tag only if it looks like one; anything else is dropped."""
    if payload and _CAMPAIGN.match(payload):
        return payload
    return None


def flags_for(understanding: Understanding) -> tuple[str, ...]:
    if understanding.is_crisis:
        return ("crisis",)
    if understanding.is_risk:
        return ("risk",)
    return ()


Deliver = Callable[[Reply], Awaitable[None]]
"""Sends one reply to the user (the Telegram front end's `send_reply`)."""


class Conversation:
    """The bot's brain, shared by every front end; keeps no conversation state in memory
    (only which users have a turn running, for `busy`)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        nlu: NLUClient,
        library: LibrarySource,
        escalation: Escalation | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.nlu = nlu
        self.library = library
        self.context = ReplyContext(
            settings.operator_name,
            settings.retention_days,
            human_wait=wait_phrase(settings.human_reply_estimate_minutes),
        )
        self.escalation = escalation or Escalation(settings, store, library, self.context)
        self._retries: set[asyncio.Task[None]] = set()
        self._in_flight: Counter[str] = Counter()

    async def handle(
        self,
        pseudonym: str,
        incoming: Incoming,
        *,
        update_id: int | None = None,
        recovered: bool = False,
        is_test: bool = False,
        contact: str | None = None,
        deliver: Deliver | None = None,
    ) -> list[Reply]:
        """Answer one incoming event for the user `pseudonym` and record both sides.

        `deliver`, when given, sends a reply to the user: it is awaited after the reply is
        composed and before the turn's records are committed, so the reply does not wait
        for the disk; the records are committed even if delivering fails (the error is
        raised after). Without it, the turn is committed first and the caller shows the
        returned replies.

        `contact` is the user's chat id sealed by `Escalation.seal`, kept so that a person
        from the team can write to them later. An empty list means the bot stays silent (a
        person handles the conversation, a mute, a flood, an update answered before): the
        message is stored all the same, once. `recovered` marks an update the update journal
        gives back after a crash (see `TurnRecord`). Test traffic (`is_test`, the dashboard's
        try-the-bot) never alerts the team.
        """
        started = time.perf_counter()
        self._in_flight[pseudonym] += 1
        try:
            replies = await self._turn(
                pseudonym,
                incoming,
                update_id=update_id,
                recovered=recovered,
                is_test=is_test,
                contact=contact,
                deliver=deliver,
            )
        except SQLAlchemyError:
            metrics.DATABASE_ERRORS.inc()
            raise
        finally:
            self._in_flight[pseudonym] -= 1
            if not self._in_flight[pseudonym]:
                del self._in_flight[pseudonym]
        metrics.observe_turn(
            _metric_kind(incoming), [r.kind for r in replies], time.perf_counter() - started
        )
        return replies

    async def _turn(
        self,
        pseudonym: str,
        incoming: Incoming,
        *,
        update_id: int | None,
        recovered: bool,
        is_test: bool,
        contact: str | None,
        deliver: Deliver | None,
    ) -> list[Reply]:
        """One read at the start, one transaction at the end (see `bot.storage.turns`).

        A text's read runs while the NLU server classifies it: the reply waits for the
        slower of the two, not for both (an update answered before costs a wasted
        classification, which is rare). The NLU request goes out first: it is the slower,
        and the read's own set-up would otherwise delay it. When the read fails, the
        classification is cancelled: `gather` alone would leave it running for nobody.
        """
        read_at = time.monotonic()
        begin = self.store.begin_turn(
            pseudonym,
            flood_window_seconds=self.settings.flood_window_seconds,
            update_id=update_id,
        )
        understanding: Understanding | None = None
        truncated = False
        if isinstance(incoming, TextIn):
            text, truncated = clean_user_text(incoming.text, self.settings.max_message_chars)
            understand = asyncio.ensure_future(self._understand(text))
            read = asyncio.ensure_future(begin)
            try:
                understanding, start = await asyncio.gather(understand, read)
            except BaseException:
                understand.cancel()
                read.cancel()
                raise
        else:
            start = await begin
        if start.answered_before and not recovered:
            log.info("update %s already answered, skipped", update_id)
            return []
        state = start.state
        before_level = state.risk_level
        if understanding is not None:
            state.risk_signals = record_signals(state.risk_signals, understanding)
            received = _record(
                "in",
                "text",
                understanding.text,
                update_id,
                is_test,
                understanding=understanding,
                flags=flags_for(understanding),
            )
            event: Command | Button | NonText | Message = Message(understanding)
        else:
            assert not isinstance(incoming, TextIn)
            event = incoming
            kind, text = _incoming_kind(incoming), _incoming_text(incoming)
            received = _record("in", kind, text, update_id, is_test)
            if isinstance(incoming, Command) and incoming.name == "start":
                campaign = campaign_from_payload(incoming.payload)
                if campaign and not state.campaign:
                    state.campaign = campaign

        flood = flood_status(
            start.recent_incoming + 1, start.cooldown_noted, limit=self.settings.flood_max_messages
        )
        plan = decide(event, state, flood)
        library = self.library.current()
        turn = functools.partial(
            TurnRecord, pseudonym, update_id=update_id, recovered=recovered, contact=contact
        )
        if plan.kind == "forget_done":
            # Only the claim: everything else about the user is deleted right after.
            if (await self.store.finish_turn(turn())).duplicate:
                return []
            await self.store.forget_user(pseudonym)
            done = Reply(kind=plan.kind, text=library.reply("forget_done"))
            if deliver is not None:
                await deliver(done)
            return [done]
        _apply_flags(plan, state)
        if plan.kind == SILENT:
            outcome = await self.store.finish_turn(turn(messages=(received,), state=state))
            if not outcome.duplicate and not is_test:
                await self._after_turn(before_level, state, plan)
            log.info("no reply: %s", "a person handles the conversation, a mute or a flood")
            return []
        reply = compose(plan, state, library, self.context)
        if truncated:
            reply = Reply(
                reply.kind,
                f"{library.reply('too_long')}\n\n{reply.text}",
                reply.buttons,
                reply.content_ids,
                reply.flags,
            )
        answer = _record(
            "out",
            reply.kind,
            reply.text,
            update_id,
            is_test,
            content_ids=reply.content_ids,
            flags=reply.flags,
        )
        record = turn(messages=(received, answer), state=state)
        if deliver is not None and await self._taken_over(pseudonym, reply.kind, read_at):
            log.info("a %s reply was withheld: a person handles the conversation", reply.kind)
            deliver, withheld = None, True
        else:
            withheld = False
        if deliver is None:
            outcome = await self.store.finish_turn(record)
        else:
            try:
                await deliver(reply)
            finally:
                # Stored whether or not the reply reached the user (then the error is raised).
                outcome = await self.store.finish_turn(record)
        if outcome.duplicate:
            # Claimed by another delivery of the update while this one ran; it wrote the turn.
            log.warning("update %s was answered by two deliveries at once", update_id)
            return [] if deliver is None else [reply]
        if not is_test:
            await self._after_turn(before_level, state, plan)
        return [] if withheld else [reply]

    async def _understand(self, text: str) -> Understanding:
        with metrics.NLU_LATENCY.time():
            understanding = await self.nlu.understand(text)
        metrics.observe_understanding(understanding.intent, understanding.source)
        return understanding

    async def _taken_over(self, pseudonym: str, kind: str, read_at: float) -> bool:
        """Whether a person from the team took the conversation over while this turn ran.

        The turn's first read (issued at `read_at`, monotonic) already told who handles the
        user. Only a turn that ran longer than `TAKEOVER_RECHECK_SECONDS` since then (a slow
        NLU server, a loaded bot) reads it again right before the reply leaves: a takeover
        that raced a quick turn by a fraction of a second cannot be told apart from one just
        after its reply, and reading again on every turn cost each reply a database round
        trip (1.3 ms p95 on SQLite, 3.4 ms on PostgreSQL, `make bench`). /forget is answered
        whoever handles it, and with the database unreachable the bot answers.
        """
        if kind in FORGET_KINDS:
            return False
        if time.monotonic() - read_at < self.settings.takeover_recheck_seconds:
            return False
        try:
            return await self.store.handling_of(pseudonym) == PERSON
        except Exception as exc:
            if not database_unreachable(exc):
                raise
            return False

    @property
    def turns_in_flight(self) -> int:
        """How many users have a turn running now."""
        return len(self._in_flight)

    def busy(self, pseudonym: str | None = None) -> bool:
        """Whether a turn of the user (or of anyone) is running: its reply may have left
        while its records are still being committed."""
        return bool(self._in_flight) if pseudonym is None else pseudonym in self._in_flight

    async def _after_turn(self, before_level: str, state: UserState, plan: ReplyPlan) -> None:
        """Raise the turn's alerts; while the database is unreachable, keep retrying them.

        The user's reply never waits for this: a crisis reply goes out whatever happens to
        the alert. The retries live in memory (a restart during an outage loses them).
        """
        try:
            # An alert stored but not posted (the turn cancelled in between) would keep the
            # moderators' chat silent for the whole event: one alert per event.
            await finish_even_if_cancelled(self.escalation.after_turn(before_level, state, plan))
        except Exception as exc:
            if not database_unreachable(exc):
                raise
            log.warning("database unavailable: the turn's alerts are retried in the background")
            task = asyncio.create_task(self._retry_after_turn(before_level, state, plan))
            self._retries.add(task)
            task.add_done_callback(self._retries.discard)

    async def _retry_after_turn(self, before_level: str, state: UserState, plan: ReplyPlan) -> None:
        while True:
            await asyncio.sleep(self.settings.write_buffer_retry_seconds)
            try:
                await self.escalation.after_turn(before_level, state, plan)
                return
            except Exception as exc:
                if not database_unreachable(exc):
                    log.exception("raising a turn's alerts failed")
                    return


def _record(
    direction: str,
    kind: str,
    text: str | None,
    update_id: int | None,
    is_test: bool,
    *,
    understanding: Understanding | None = None,
    content_ids: Sequence[str] = (),
    flags: Sequence[str] = (),
) -> MessageRecord:
    """One side of the turn; the reply carries no update id, but its write key names it."""
    return MessageRecord(
        direction=direction,
        kind=kind,
        text=text,
        created_at=utcnow(),
        understanding=understanding,
        content_ids=content_ids,
        flags=flags,
        update_id=update_id if direction == "in" else None,
        is_test=is_test,
        write_key=_write_key(update_id, direction),
    )


def _write_key(update_id: int | None, direction: str) -> str | None:
    """One key per update and direction: a turn answered again after a crash (the journal
    replays it) does not store its messages twice."""
    return None if update_id is None else f"update:{update_id}:{direction}"


def _apply_flags(plan: ReplyPlan, state: UserState) -> None:
    if "crisis" in plan.flags:
        state.in_crisis = True
    if "human_requested" in plan.flags:
        state.human_requested = True


def _metric_kind(incoming: Incoming) -> str:
    return "text" if isinstance(incoming, TextIn) else _incoming_kind(incoming)


def _incoming_kind(incoming: Command | Button | NonText) -> str:
    if isinstance(incoming, Command):
        return "command"
    if isinstance(incoming, Button):
        return "callback"
    return "non_text"


def _incoming_text(incoming: Command | Button | NonText) -> str:
    if isinstance(incoming, Command):
        # The payload is a campaign tag at most; it is kept on the user, not in the text.
        return f"/{incoming.name}"
    if isinstance(incoming, Button):
        return incoming.data
    return f"[{incoming.kind}]"
