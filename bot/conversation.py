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
from collections.abc import Sequence
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
from bot.storage.models import utcnow
from bot.storage.resilient import database_unreachable
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


class Conversation:
    """The bot's brain, shared by every front end; holds no per-user state in memory."""

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

    async def handle(
        self,
        pseudonym: str,
        incoming: Incoming,
        *,
        update_id: int | None = None,
        recovered: bool = False,
        is_test: bool = False,
        contact: str | None = None,
    ) -> list[Reply]:
        """Answer one incoming event for the user `pseudonym` and record both sides.

        `contact` is the user's chat id sealed by `Escalation.seal`, kept so that a person
        from the team can write to them later. An empty list means the bot stays silent (a
        person handles the conversation, a mute, a flood, an update answered before): the
        message is stored all the same, once. `recovered` marks an update the update journal
        gives back after a crash (see `TurnRecord`). Test traffic (`is_test`, the dashboard's
        try-the-bot) never alerts the team.
        """
        started = time.perf_counter()
        try:
            replies = await self._turn(
                pseudonym,
                incoming,
                update_id=update_id,
                recovered=recovered,
                is_test=is_test,
                contact=contact,
            )
        except SQLAlchemyError:
            metrics.DATABASE_ERRORS.inc()
            raise
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
    ) -> list[Reply]:
        """One read at the start, one transaction at the end (see `bot.storage.turns`)."""
        start = await self.store.begin_turn(
            pseudonym, flood_window_seconds=self.settings.flood_window_seconds
        )
        state = start.state
        before_level = state.risk_level
        truncated = False
        if isinstance(incoming, TextIn):
            text, truncated = clean_user_text(incoming.text, self.settings.max_message_chars)
            with metrics.NLU_LATENCY.time():
                understanding = await self.nlu.understand(text)
            metrics.observe_understanding(understanding.intent, understanding.source)
            state.risk_signals = record_signals(state.risk_signals, understanding)
            received = _record(
                "in",
                "text",
                text,
                update_id,
                is_test,
                understanding=understanding,
                flags=flags_for(understanding),
            )
            event: Command | Button | NonText | Message = Message(understanding)
        else:
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
            return [Reply(kind=plan.kind, text=library.reply("forget_done"))]
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
        outcome = await self.store.finish_turn(turn(messages=(received, answer), state=state))
        if outcome.duplicate:
            log.info("update %s already answered, skipped", update_id)
            return []
        if not is_test:
            await self._after_turn(before_level, state, plan)
        if outcome.handling == PERSON and reply.kind not in FORGET_KINDS:
            # A person from the team took over while this turn ran; /forget is always answered.
            log.info("a %s reply was withheld: a person handles the conversation", reply.kind)
            return []
        return [reply]

    async def _after_turn(self, before_level: str, state: UserState, plan: ReplyPlan) -> None:
        """Raise the turn's alerts; while the database is unreachable, keep retrying them.

        The user's reply never waits for this: a crisis reply goes out whatever happens to
        the alert. The retries live in memory (a restart during an outage loses them).
        """
        try:
            await self.escalation.after_turn(before_level, state, plan)
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
