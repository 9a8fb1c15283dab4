"""Whether the bot answers at all (`bot.policy.decision._gate`): a person, a wait, a mute, a flood.

Pure: each row of the README's "who answers" table is a test.
"""

from __future__ import annotations

import pytest

from bot.nlu.understanding import Understanding
from bot.policy.decision import (
    CRISIS_TOOL_BUTTONS,
    GROUNDING,
    HUMAN,
    SAFE_NO,
    SAFETY_BUTTONS,
    SAFETY_PLAN,
    Button,
    Command,
    Event,
    Message,
    decide,
)
from bot.policy.state import UserState


def said(intent: str) -> Message:
    return Message(Understanding("text", intent, 0.9))


def user(**changes: object) -> UserState:
    state = UserState(pseudonym="p" * 64)
    for name, value in changes.items():
        setattr(state, name, value)
    return state


def test_a_crisis_gets_the_safety_reply_with_the_crisis_tools() -> None:
    plan = decide(said("crisis_self_harm"), user())
    assert plan.kind == "safety_self_harm"
    assert plan.buttons == SAFETY_BUTTONS
    assert plan.flags == ("crisis",)


@pytest.mark.parametrize(
    "event",
    [said("claim_good_life"), said("greet"), Command("help"), Button(HUMAN), Button(GROUNDING)],
)
def test_nothing_automatic_while_a_person_handles_the_conversation(event: Event) -> None:
    plan = decide(event, user(handling="person"))
    assert (plan.kind, plan.flags) == ("silent", ())


def test_a_crisis_while_a_person_handles_it_stays_silent_but_keeps_the_crisis_flag() -> None:
    plan = decide(said("crisis_violence"), user(handling="person"))
    assert (plan.kind, plan.flags) == ("silent", ("crisis",))


@pytest.mark.parametrize("handling", ["bot", "waiting", "person"])
def test_forget_is_answered_whoever_handles_the_conversation(handling: str) -> None:
    state = user(handling=handling, muted=True)
    assert decide(Command("forget"), state).kind == "forget_confirm"
    assert decide(Button("forget_yes"), state).kind == "forget_done"


def test_while_waiting_for_a_person_only_crisis_the_tools_and_a_repeated_request_are_answered() -> (
    None
):
    waiting = user(handling="waiting", in_crisis=True)
    assert decide(said("claim_good_life"), waiting).kind == "silent"
    assert decide(said("greet"), waiting).kind == "silent"
    assert decide(said("crisis_self_harm"), waiting).kind == "safety_self_harm"
    assert decide(Button(GROUNDING), waiting).kind == "grounding"
    assert decide(Button(SAFETY_PLAN), waiting).kind == "safety_plan"
    assert decide(Button(SAFE_NO), waiting).kind == "crisis_safe_no"
    repeated = decide(Command("human"), waiting)
    assert (repeated.kind, repeated.flags) == ("human_requested", ("human_requested",))


def test_a_muted_user_gets_no_reply_except_in_crisis() -> None:
    muted = user(muted=True)
    assert decide(said("insult"), muted).kind == "silent"
    assert decide(Command("human"), muted).kind == "silent"
    assert decide(said("crisis_self_harm"), muted).kind == "safety_self_harm"
    assert decide(Button(GROUNDING), muted).kind == "grounding"


def test_a_flood_gets_one_cooldown_note_then_silence() -> None:
    assert decide(said("greet"), user(), "first").kind == "cooldown"
    assert decide(said("greet"), user(), "again").kind == "silent"
    assert decide(said("greet"), user(), "calm").kind == "greet"


@pytest.mark.parametrize(
    "state",
    [user(in_crisis=True), user(risk_level="high"), user(risk_level="crisis")],
    ids=["in crisis", "high risk", "crisis level"],
)
def test_users_at_risk_are_never_throttled(state: UserState) -> None:
    assert decide(said("claim_good_life"), state, "again").kind != "silent"
    assert decide(said("claim_good_life"), state, "first").kind != "cooldown"


def test_a_crisis_in_a_flood_is_answered() -> None:
    assert decide(said("crisis_self_harm"), user(), "again").kind == "safety_self_harm"


def test_saying_safe_never_clears_crisis_and_not_safe_raises_it() -> None:
    safe = decide(Button("safe_yes"), user(in_crisis=True))
    assert (safe.kind, safe.buttons, safe.flags) == ("crisis_safe_yes", CRISIS_TOOL_BUTTONS, ())
    not_safe = decide(Button(SAFE_NO), user())
    assert not_safe.flags == ("crisis", "not_safe")
    assert not_safe.resource_kinds == ("emergency", "crisis")
