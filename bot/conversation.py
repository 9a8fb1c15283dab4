"""One conversation turn: update -> understanding -> decision -> content -> reply -> record.

Every front end (Telegram, the terminal chat, the tests) goes through `Conversation.handle`,
so what is stored and what is said cannot differ between them.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import unicodedata
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from bot.content.database_provider import LibrarySource
from bot.escalation.service import Escalation
from bot.nlu.client import NLUClient
from bot.nlu.understanding import Understanding
from bot.observability import metrics
from bot.policy.compose import Reply, ReplyContext, compose, wait_phrase
from bot.policy.decision import CALM, SILENT, Button, Command, Message, NonText, ReplyPlan, decide
from bot.policy.state import UserState
from bot.safety.risk import record_signals
from bot.settings import Settings
from bot.storage.resilient import database_unreachable
from bot.storage.store import Store

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
        is_test: bool = False,
        contact: str | None = None,
    ) -> list[Reply]:
        """Answer one incoming event for the user `pseudonym` and record both sides.

        `contact` is the user's chat id sealed by `Escalation.seal`, kept so that a person
        from the team can write to them later. An empty list means the bot stays silent (a
        person handles the conversation, a mute, a flood): the message is stored all the same.
        Test traffic (`is_test`, the dashboard's try-the-bot) never alerts the team.
        """
        started = time.perf_counter()
        try:
            replies = await self._turn(
                pseudonym, incoming, update_id=update_id, is_test=is_test, contact=contact
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
        is_test: bool,
        contact: str | None,
    ) -> list[Reply]:
        state = await self.store.load_user(pseudonym)
        before_level = state.risk_level
        truncated = False
        if isinstance(incoming, TextIn):
            text, truncated = clean_user_text(incoming.text, self.settings.max_message_chars)
            with metrics.NLU_LATENCY.time():
                understanding = await self.nlu.understand(text)
            metrics.observe_understanding(understanding.intent, understanding.source)
            state.risk_signals = record_signals(state.risk_signals, understanding)
            await self.store.record_message(
                pseudonym,
                direction="in",
                kind="text",
                text=text,
                understanding=understanding,
                flags=flags_for(understanding),
                update_id=update_id,
                is_test=is_test,
                write_key=_write_key(update_id, "in"),
            )
            event: Command | Button | NonText | Message = Message(understanding)
        else:
            event = incoming
            await self.store.record_message(
                pseudonym,
                direction="in",
                kind=_incoming_kind(incoming),
                text=_incoming_text(incoming),
                update_id=update_id,
                is_test=is_test,
                write_key=_write_key(update_id, "in"),
            )
            if isinstance(incoming, Command) and incoming.name == "start":
                campaign = campaign_from_payload(incoming.payload)
                if campaign and not state.campaign:
                    state.campaign = campaign

        flood = await self._flood_status(pseudonym)
        plan = decide(event, state, flood)
        library = self.library.current()
        if plan.kind == "forget_done":
            await self.store.forget_user(pseudonym)
            return [Reply(kind=plan.kind, text=library.reply("forget_done"))]
        _apply_flags(plan, state)
        if plan.kind == SILENT:
            await self.store.save_user(state, contact=contact)
            if not is_test:
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
        await self.store.record_message(
            pseudonym,
            direction="out",
            kind=reply.kind,
            text=reply.text,
            content_ids=reply.content_ids,
            flags=reply.flags,
            is_test=is_test,
            write_key=_write_key(update_id, "out"),
        )
        await self.store.save_user(state, contact=contact)
        if not is_test:
            await self._after_turn(before_level, state, plan)
        return [reply]

    async def _flood_status(self, pseudonym: str) -> str:
        """The flood check reads the database; while it is unreachable nobody is throttled."""
        try:
            return await self.escalation.flood_status(pseudonym)
        except Exception as exc:
            if not database_unreachable(exc):
                raise
            return CALM

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
