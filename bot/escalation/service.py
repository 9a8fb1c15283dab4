"""Escalation: alerts for the team, a person taking over, requests nobody answered.

`Conversation.handle` calls `after_turn` once per turn, after the state is saved: it raises
the alerts the turn called for (one per event) and posts them to the moderators' Telegram
group in the background, so the user's reply is never held up by it. The dashboard calls
the moderator actions (`take_over`, `hand_back`, `send_team_message`, ...). Everything sent
to a user outside a turn goes through `deliver`, which checks right before sending that no
person has taken the conversation over (for automatic messages) and records the message.

How the dashboard reaches Telegram: in `make run` the dashboard shares this object with the
bot, so it sends with the bot's own `telegram.Bot`; a dashboard run alone builds a
`telegram.Bot` from `TELEGRAM_BOT_TOKEN` and `TELEGRAM_API_BASE_URL` (`bot.escalation.
telegram`). Either way the user sees messages from the same bot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from bot.content.database_provider import LibrarySource
from bot.escalation.contact import ContactSealer, ContactUnreadable
from bot.policy.compose import Reply, ReplyContext, compose
from bot.policy.decision import (
    CRISIS_KINDS,
    EXIT_KINDS,
    HUMAN,
    SAFETY_KINDS,
    SILENT,
    ReplyPlan,
)
from bot.policy.state import UserState
from bot.safety.risk import severity
from bot.settings import Settings
from bot.storage.escalation import (
    CRISIS,
    HIGH_RISK,
    HUMAN_REQUEST,
    PERSON,
    AlertView,
    EscalationStore,
)
from bot.storage.models import utcnow
from bot.storage.store import Store

log = logging.getLogger(__name__)

NOT_SAFE_REASON = "said they are not safe"
ESCALATED_REASON = "nobody answered in time"


class Messenger(Protocol):
    """Sends one reply to a Telegram chat (the bot's own `telegram.Bot` in production)."""

    async def send(self, chat_id: int, reply: Reply) -> None: ...


@dataclass(frozen=True)
class Delivery:
    """What became of a message meant for a user."""

    sent: bool
    reason: str = ""


class Escalation:
    """Alerts, takeover and unanswered requests, over the bot's database and content."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        library: LibrarySource,
        context: ReplyContext,
        messenger: Messenger | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.escalations = EscalationStore(store.database)
        self.library = library
        self.context = context
        self.messenger = messenger
        self.sealer = ContactSealer(settings.contact_secret) if settings.contact_secret else None
        self._background: set[asyncio.Task[bool]] = set()

    def attach(self, messenger: Messenger) -> None:
        """Give the escalation a way to Telegram (done when the Telegram bot is built)."""
        self.messenger = messenger

    def seal(self, chat_id: int) -> str | None:
        return self.sealer.seal(chat_id) if self.sealer else None

    # -- during a turn ---------------------------------------------------------------------

    async def after_turn(self, before_level: str, state: UserState, plan: ReplyPlan) -> None:
        """Raise what this turn calls for: a crisis, a high risk, a request for a person."""
        pseudonym = state.pseudonym
        reasons = state.risk_reasons or [f"risk level {state.risk_level}"]
        if plan.kind in SAFETY_KINDS or (plan.kind == SILENT and "crisis" in plan.flags):
            alert = await self.escalations.raise_alert(pseudonym, CRISIS, "crisis", reasons)
            if alert is not None:
                self._notify_soon(alert, "alert_heading_crisis")
        if "not_safe" in plan.flags:
            await self._not_safe(pseudonym, reasons)
        if (
            state.risk_level == "high"
            and severity(before_level) < severity("high")
            and not state.in_crisis
        ):
            alert = await self.escalations.raise_alert(pseudonym, HIGH_RISK, "high", reasons)
            if alert is not None:
                self._notify_soon(alert, "alert_heading_high_risk")
        if "human_requested" in plan.flags and await self.escalations.request_person(pseudonym):
            level = "crisis" if state.in_crisis else "request"
            why = ["asked for a person", *state.risk_reasons]
            alert = await self.escalations.raise_alert(pseudonym, HUMAN_REQUEST, level, why)
            if alert is not None:
                self._notify_soon(alert, "alert_heading_human_request")
            log.info("a user asked for a person")

    async def _not_safe(self, pseudonym: str, reasons: Sequence[str]) -> None:
        alert = await self.escalations.raise_alert(
            pseudonym, CRISIS, "crisis", [NOT_SAFE_REASON, *reasons]
        )
        if alert is None:
            alert = await self.escalations.unresolved_alert(pseudonym, CRISIS)
            if alert is None or not await self.escalations.add_reason(alert.id, NOT_SAFE_REASON):
                return
            alert = await self.escalations.alert(alert.id)
            if alert is None:
                return
        self._notify_soon(alert, "alert_heading_not_safe")

    # -- moderators' alerts ----------------------------------------------------------------

    def conversation_link(self, pseudonym: str) -> str:
        return f"{self.settings.dashboard_public_url.rstrip('/')}/escalation/{pseudonym}"

    def alert_text(self, alert: AlertView, heading_key: str) -> str:
        """The alert for the moderators' group: never the user's words or Telegram identity."""
        library = self.library.current()
        return library.reply(
            "moderator_alert",
            heading=library.reply(heading_key),
            conversation=alert.pseudonym[:10],
            level=alert.risk_level,
            reasons=", ".join(alert.reasons) or "-",
            link=self.conversation_link(alert.pseudonym),
        )

    def _notify_soon(self, alert: AlertView, heading_key: str) -> None:
        """Post the alert in the background: the user's reply does not wait for it."""
        task = asyncio.create_task(self.notify(alert, heading_key))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def notify(self, alert: AlertView, heading_key: str) -> bool:
        """Post `alert` to MODERATOR_CHAT_ID; False (logged) if unset or Telegram fails."""
        chat_id = self.settings.moderator_chat_id
        if chat_id is None or self.messenger is None:
            return False
        try:
            text = self.alert_text(alert, heading_key)
            await self.messenger.send(chat_id, Reply(kind="alert", text=text))
        except Exception as exc:  # the queue in the dashboard still has it
            log.warning("could not post alert %d to the moderators' chat: %r", alert.id, exc)
            return False
        await self.escalations.mark_notified(alert.id)
        log.info("alert %d (%s) posted to the moderators' chat", alert.id, alert.kind)
        return True

    async def drain(self) -> None:
        """Wait for alerts still being posted (at shutdown, and in tests)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    # -- moderator actions -----------------------------------------------------------------

    async def take_over(self, pseudonym: str, moderator: str) -> Delivery:
        """A moderator handles the conversation: the bot goes quiet, the user is told."""
        if not await self.escalations.take_over(pseudonym, moderator):
            return Delivery(False, "already taken over by you")
        request = await self.escalations.unresolved_alert(pseudonym, HUMAN_REQUEST)
        if request is not None:
            await self.escalations.acknowledge(request.id, moderator)
        library = self.library.current()
        text = library.reply("takeover_started", operator=self.settings.operator_name)
        return await self.deliver(pseudonym, Reply("takeover_started", text), automatic=False)

    async def hand_back(self, pseudonym: str, moderator: str) -> Delivery:
        """The bot answers again; the request for a person, if any, is resolved."""
        if not await self.escalations.hand_back(pseudonym):
            return Delivery(False, "the bot already answers this conversation")
        request = await self.escalations.unresolved_alert(pseudonym, HUMAN_REQUEST)
        if request is not None:
            await self.escalations.resolve(request.id, moderator)
        library = self.library.current()
        reply = Reply(
            "handed_back",
            library.reply("handed_back"),
            buttons=((library.reply(f"button_{HUMAN}"), HUMAN),),
        )
        return await self.deliver(pseudonym, reply, automatic=False)

    async def send_team_message(self, pseudonym: str, moderator: str, text: str) -> Delivery:
        """What a moderator typed, marked as from a member of the team (taking over first)."""
        text = text.strip()
        if not text:
            return Delivery(False, "the message is empty")
        if len(text) > 3500:
            return Delivery(False, "the message is longer than 3,500 characters")
        control = await self.escalations.control(pseudonym)
        if control is None:
            return Delivery(False, "no such conversation")
        if control.handling != PERSON or control.handled_by != moderator:
            taken = await self.take_over(pseudonym, moderator)
            if not taken.sent and taken.reason != "already taken over by you":
                return taken
        library = self.library.current()
        body = library.reply("team_message", operator=self.settings.operator_name, text=text)
        return await self.deliver(
            pseudonym, Reply("team_message", body, flags=("team",)), automatic=False
        )

    # -- unanswered requests ---------------------------------------------------------------

    async def sweep_unanswered(self) -> int:
        """Requests for a person older than the timeout: resources to the user, escalate.

        Returns how many were handled. The bot answers those users again.
        """
        cutoff = utcnow() - timedelta(seconds=self.settings.human_request_timeout_seconds)
        released = await self.escalations.release_unanswered(cutoff)
        for pseudonym in released:
            state = await self.store.load_user(pseudonym)
            kinds = CRISIS_KINDS + EXIT_KINDS if not state.in_crisis else CRISIS_KINDS
            plan = ReplyPlan(
                "human_unanswered",
                resource_kinds=kinds,
                country=state.country or "global",
                buttons=(HUMAN,),
            )
            reply = compose(plan, state, self.library.current(), self.context)
            await self.deliver(pseudonym, reply, automatic=True)
            alert = await self.escalations.escalate_request(pseudonym, ESCALATED_REASON)
            if alert is not None:
                self._notify_soon(alert, "alert_heading_escalated")
            log.info("a request for a person was not answered in time and was escalated")
        return len(released)

    async def unanswered_loop(self, interval_seconds: float) -> None:
        """Run `sweep_unanswered` every `interval_seconds` until cancelled."""
        while True:
            try:
                await self.sweep_unanswered()
            except Exception:  # a database hiccup must not end the loop
                log.exception("the sweep for unanswered requests failed; trying again later")
            await asyncio.sleep(interval_seconds)

    # -- sending outside a turn ------------------------------------------------------------

    async def deliver(self, pseudonym: str, reply: Reply, *, automatic: bool) -> Delivery:
        """Send `reply` to the user and record it; automatic messages yield to a person."""
        control = await self.escalations.control(pseudonym)
        if control is None:
            return Delivery(False, "no such conversation (deleted?)")
        if automatic and control.handling == PERSON:
            return Delivery(False, "a person handles this conversation")
        if self.messenger is None:
            return Delivery(False, "the bot is not connected to Telegram")
        if self.sealer is None or control.contact is None:
            return Delivery(False, "no way to reach this user (no stored contact)")
        try:
            chat_id = self.sealer.open(control.contact)
        except ContactUnreadable:
            return Delivery(False, "the stored contact cannot be decrypted (CONTACT_SECRET?)")
        try:
            await self.messenger.send(chat_id, reply)
        except Exception as exc:
            log.warning("could not deliver a %s message: %r", reply.kind, exc)
            return Delivery(False, "Telegram refused the message (blocked bot?)")
        await self.store.record_message(
            pseudonym,
            direction="out",
            kind=reply.kind,
            text=reply.text,
            content_ids=reply.content_ids,
            flags=reply.flags,
        )
        return Delivery(True)
