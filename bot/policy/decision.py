"""The decision table: from an event (message, command, button) and user state to a reply plan.

This module is pure: no I/O, no content, no randomness, so every row of the table is a unit
test (`tests/test_policy.py`). Crisis comes first, before anything else is considered; a user
in crisis state never receives a counter-message.

After the table, `_gate` decides whether the bot may answer at all (README, "Escalation"):
while a person from the team handles the conversation, nothing automatic is sent; while a
person was asked for and nobody took it yet, only crisis replies and the crisis tools; a muted
or flooding user gets no reply (one cooldown note for a flood), but a crisis message is always
answered and a user at high risk or in crisis is never throttled. /forget always works.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.nlu.intents import CRISIS_INTENTS, META_INTENTS, RISK_INTENTS
from bot.nlu.language import looks_english
from bot.nlu.understanding import Understanding
from bot.policy.state import UserState

# Buttons, by id; their labels are reply texts (`button_<id>`) in the content library.
ANOTHER_STORY = "another_story"
HELP = "help"
HUMAN = "human"
FORGET_YES = "forget_yes"
FORGET_NO = "forget_no"
COUNTRY = "country"
"""Not one button but the row of country buttons (and "other") built from the library."""

SAFE_YES = "safe_yes"
SAFE_NO = "safe_no"
GROUNDING = "grounding"
SAFETY_PLAN = "safety_plan"

COUNTER_BUTTONS = (ANOTHER_STORY, HELP, HUMAN)
SAFETY_BUTTONS = (SAFE_YES, SAFE_NO, HUMAN, GROUNDING, SAFETY_PLAN)
CRISIS_TOOL_BUTTONS = (HUMAN, GROUNDING, SAFETY_PLAN)

SILENT = "silent"
"""The plan of saying nothing (a person handles the user, a mute, a flood): stored, not sent."""
COOLDOWN = "cooldown"
OTHER_LANGUAGE = "other_language"
"""The plan for a message the bot could not read: it says so and offers help and a person."""
SAFETY_KINDS = frozenset({"safety_self_harm", "safety_violence"})
CRISIS_TOOL_KINDS = frozenset({"grounding", "safety_plan", "crisis_safe_yes", "crisis_safe_no"})
FORGET_KINDS = frozenset({"forget_confirm", "forget_done", "forget_cancelled"})

# Who answers the user (the `handling` of `UserState`); the same words as bot.storage.escalation.
BOT, WAITING, PERSON = "bot", "waiting", "person"

CALM, FLOOD_FIRST, FLOOD_AGAIN = "calm", "first", "again"
"""Flood states: under the limit; just over it (one cooldown note); still over it."""
UNTHROTTLED_LEVELS = frozenset({"high", "crisis"})

EXIT_KINDS = ("exit", "family")
CRISIS_KINDS = ("emergency", "crisis")

SIMPLE_REPLIES = META_INTENTS - {"ask_bot_identity", "ask_privacy"}
"""Intents answered with the reply text of the same name and nothing else."""


@dataclass(frozen=True)
class Message:
    """A text message, already understood."""

    understanding: Understanding


@dataclass(frozen=True)
class Command:
    """A slash command (`/start`, ...) with its optional deep-link payload."""

    name: str
    payload: str | None = None


@dataclass(frozen=True)
class Button:
    """An inline-button press; `data` is the callback data the bot attached."""

    data: str


@dataclass(frozen=True)
class NonText:
    """A sticker, photo, voice note or anything else without text."""

    kind: str


Event = Message | Command | Button | NonText


@dataclass(frozen=True)
class ReplyPlan:
    """What to answer, before any text is chosen.

    `kind` names the reply (and is stored with it); `claim` selects testimonies; a non-empty
    `resource_kinds` appends resources for `country` (or asks for the country first when
    `ask_country`); `flags` mark the conversation for moderators.
    """

    kind: str
    claim: str | None = None
    resource_kinds: tuple[str, ...] = ()
    country: str | None = None
    ask_country: bool = False
    buttons: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()


def decide(event: Event, state: UserState, flood: str = CALM) -> ReplyPlan:
    """The whole decision table; read top to bottom, first match wins; then the gate."""
    if isinstance(event, Message):
        plan = _decide_message(event.understanding, state)
    elif isinstance(event, Command):
        plan = _decide_command(event, state)
    elif isinstance(event, Button):
        plan = _decide_button(event.data, state)
    else:
        plan = ReplyPlan("non_text")
    return _gate(plan, state, flood)


def _gate(plan: ReplyPlan, state: UserState, flood: str) -> ReplyPlan:
    """Whether the bot may answer: crisis first, deletion always, then who handles the user."""
    safety = plan.kind in SAFETY_KINDS
    if plan.kind in FORGET_KINDS:
        return plan
    if state.handling == PERSON:
        # A person from the team is talking with the user: the bot stays out, but a crisis
        # message still raises crisis state and the alert (the flags) for that person.
        return ReplyPlan(SILENT, flags=plan.flags if safety else ())
    if safety:
        return plan
    if plan.kind in CRISIS_TOOL_KINDS and (state.handling == WAITING or state.muted):
        return plan
    if plan.kind == "human_requested" and state.handling == WAITING:
        return plan  # asked again while waiting: say again that someone will answer, and when
    if state.handling == WAITING or state.muted:
        return ReplyPlan(SILENT)
    if flood != CALM and not state.in_crisis and state.risk_level not in UNTHROTTLED_LEVELS:
        return ReplyPlan(COOLDOWN) if flood == FLOOD_FIRST else ReplyPlan(SILENT)
    return plan


def _decide_message(understood: Understanding, state: UserState) -> ReplyPlan:
    intent = understood.intent
    country = understood.entity("country") or state.country
    if intent in CRISIS_INTENTS:
        if (
            state.in_crisis
            and understood.source == "crisis_floor"
            and state.handling == BOT
            and not state.muted
        ):
            # Only second in the model's ranking ("no i'm fine, forget it": deny, then
            # self-harm): someone already in crisis, talking with the bot, gets the follow-up
            # with the same crisis lines, not a fresh "I'm really glad you told me". While
            # waiting for a person, muted or with a person, the safety reply stands: only it
            # passes the gate and raises the alert.
            return _crisis_followup(country)
        return _safety(intent, country)
    if intent is None:
        return ReplyPlan("nlu_unavailable", buttons=(HELP, HUMAN))
    if intent == "request_human":
        return _human()
    if intent in ("ask_resources", "ask_help_leaving"):
        return _resources(
            "help_leaving" if intent == "ask_help_leaving" else "resources", country, state
        )
    if state.in_crisis:
        return _crisis_followup(country)
    if intent in RISK_INTENTS:
        return ReplyPlan("counter_message", claim=intent, buttons=COUNTER_BUTTONS, flags=("risk",))
    if not looks_english(understood.text):
        # Read, but not understood: whatever ordinary intent the model named is a guess, and a
        # crisis in another language would be missed. Say so, and offer help and a person.
        return ReplyPlan(OTHER_LANGUAGE, buttons=(HELP, HUMAN))
    if intent == "question_defectors":
        return ReplyPlan("sourcing", buttons=COUNTER_BUTTONS)
    if intent == "ask_bot_identity":
        return ReplyPlan("identity", buttons=(HUMAN,))
    if intent == "ask_privacy":
        return ReplyPlan("privacy")
    if intent in SIMPLE_REPLIES:
        return ReplyPlan(intent)
    # nlu_fallback, and any intent the model knows but this table does not.
    return ReplyPlan("fallback", buttons=(HELP, HUMAN))


def _safety(intent: str, country: str | None) -> ReplyPlan:
    kind = "safety_violence" if intent == "crisis_violence" else "safety_self_harm"
    return ReplyPlan(
        kind,
        resource_kinds=CRISIS_KINDS,
        country=country,
        buttons=SAFETY_BUTTONS,
        flags=("crisis",),
    )


def _crisis_followup(country: str | None) -> ReplyPlan:
    """For a user in crisis state: support and crisis lines, never a counter-message."""
    return ReplyPlan(
        "crisis_followup",
        resource_kinds=CRISIS_KINDS,
        country=country,
        buttons=CRISIS_TOOL_BUTTONS,
        flags=("crisis",),
    )


def _human() -> ReplyPlan:
    return ReplyPlan("human_requested", flags=("human_requested",))


def _resources(kind: str, country: str | None, state: UserState) -> ReplyPlan:
    kinds = EXIT_KINDS + CRISIS_KINDS if state.in_crisis else EXIT_KINDS
    if country is None:
        return ReplyPlan(kind, ask_country=True, buttons=(COUNTRY,))
    return ReplyPlan(kind, resource_kinds=kinds, country=country, buttons=(HUMAN,))


def _decide_command(command: Command, state: UserState) -> ReplyPlan:
    name = command.name
    if name == "start":
        return ReplyPlan("welcome")
    if name == "help":
        return ReplyPlan("help")
    if name == "privacy":
        return ReplyPlan("privacy")
    if name == "resources":
        return _resources("resources", state.country, state)
    if name == "forget":
        return ReplyPlan("forget_confirm", buttons=(FORGET_YES, FORGET_NO))
    if name == "human":
        return _human()
    return ReplyPlan("help")


def _decide_button(data: str, state: UserState) -> ReplyPlan:
    if data == ANOTHER_STORY:
        if state.in_crisis:
            return _crisis_followup(state.country)
        claim = state.last_claim or "interest_joining"
        return ReplyPlan("counter_message", claim=claim, buttons=COUNTER_BUTTONS)
    if data == HELP:
        if state.last_reply_kind == OTHER_LANGUAGE:
            # That reply promised people to call now to someone the bot could not read, who
            # may be in crisis: crisis lines at once, with no question about the country.
            return ReplyPlan(
                "resources",
                resource_kinds=CRISIS_KINDS + EXIT_KINDS,
                country=state.country,
                buttons=(HUMAN,),
            )
        return _resources("resources", state.country, state)
    if data == HUMAN:
        return _human()
    if data == GROUNDING:
        return ReplyPlan("grounding", buttons=(SAFETY_PLAN, HUMAN))
    if data == SAFETY_PLAN:
        return ReplyPlan(
            "safety_plan",
            resource_kinds=CRISIS_KINDS,
            country=state.country,
            buttons=(GROUNDING, HUMAN),
        )
    if data == SAFE_YES:
        # Glad, and the tools stay offered: saying "safe" once never ends crisis state.
        return ReplyPlan("crisis_safe_yes", buttons=CRISIS_TOOL_BUTTONS)
    if data == SAFE_NO:
        return ReplyPlan(
            "crisis_safe_no",
            resource_kinds=CRISIS_KINDS,
            country=state.country,
            buttons=(HUMAN, GROUNDING),
            flags=("crisis", "not_safe"),
        )
    if data == FORGET_YES:
        return ReplyPlan("forget_done")
    if data == FORGET_NO:
        return ReplyPlan("forget_cancelled")
    if data.startswith(f"{COUNTRY}:"):
        code = data.split(":", 1)[1]
        kind = "help_leaving" if state.last_reply_kind == "help_leaving" else "resources"
        return _resources(kind, "global" if code == "other" else code, state)
    return ReplyPlan("fallback", buttons=(HELP, HUMAN))
