"""The decision table, row by row: crisis first, then risk, help, meta, fallback."""

from __future__ import annotations

import pytest

from bot.nlu.intents import ALL_INTENTS, CLAIM_INTENTS, CRISIS_INTENTS, RISK_INTENTS
from bot.nlu.understanding import Entity, Understanding
from bot.policy.decision import (
    COUNTER_BUTTONS,
    Button,
    Command,
    Message,
    NonText,
    decide,
)
from bot.policy.state import UserState


def said(intent: str | None, confidence: float = 0.9, country: str | None = None) -> Message:
    entities = (Entity("country", country),) if country else ()
    return Message(Understanding("text", intent, confidence, entities=entities))


def fresh() -> UserState:
    return UserState(pseudonym="p" * 64)


@pytest.mark.parametrize("intent", sorted(RISK_INTENTS))
def test_every_risk_intent_gets_a_counter_message_for_its_claim(intent: str) -> None:
    plan = decide(said(intent), fresh())
    assert plan.kind == "counter_message"
    assert plan.claim == intent
    assert plan.buttons == COUNTER_BUTTONS
    assert plan.flags == ("risk",)


@pytest.mark.parametrize("intent", sorted(CRISIS_INTENTS))
def test_crisis_overrides_everything_even_at_low_confidence(intent: str) -> None:
    state = fresh()
    state.in_crisis = False
    plan = decide(said(intent, confidence=0.2), state)
    assert plan.kind.startswith("safety_")
    assert plan.flags == ("crisis",)
    assert "crisis" in plan.resource_kinds and "emergency" in plan.resource_kinds


def test_violence_and_self_harm_get_different_safety_replies() -> None:
    assert decide(said("crisis_violence"), fresh()).kind == "safety_violence"
    assert decide(said("crisis_self_harm"), fresh()).kind == "safety_self_harm"


@pytest.mark.parametrize("intent", sorted(RISK_INTENTS | {"question_defectors"}))
def test_a_user_in_crisis_never_gets_a_counter_message(intent: str) -> None:
    state = fresh()
    state.in_crisis = True
    plan = decide(said(intent), state)
    assert plan.kind == "crisis_followup"
    assert plan.claim is None


def ranked_second() -> Message:
    """Self-harm that only the crisis floor raised: the model put `deny` first."""
    return Message(
        Understanding("no im fine, forget it", "crisis_self_harm", 0.24, source="crisis_floor")
    )


def test_a_crisis_only_ranked_second_gets_the_follow_up_when_already_in_crisis() -> None:
    second = ranked_second()
    state = fresh()
    state.in_crisis = True
    plan = decide(second, state)
    assert plan.kind == "crisis_followup"
    assert plan.flags == ("crisis",) and "crisis" in plan.resource_kinds
    state.in_crisis = False
    assert decide(second, state).kind == "safety_self_harm"
    state.in_crisis = True
    assert decide(said("crisis_self_harm"), state).kind == "safety_self_harm"


@pytest.mark.parametrize("who", ["waiting", "person", "muted"])
def test_a_crisis_only_ranked_second_still_passes_the_gate_when_the_bot_is_not_answering(
    who: str,
) -> None:
    second = ranked_second()
    state = fresh()
    state.in_crisis = True
    if who == "muted":
        state.muted = True
    else:
        state.handling = who
    plan = decide(second, state)
    assert plan.flags == ("crisis",)
    assert plan.kind == ("silent" if who == "person" else "safety_self_harm")


def test_another_story_is_refused_in_crisis() -> None:
    state = fresh()
    state.in_crisis = True
    state.last_claim = "claim_good_life"
    assert decide(Button("another_story"), state).kind == "crisis_followup"


def test_benign_faith_and_opposition_get_no_counter_message() -> None:
    for intent in ("benign_religious", "oppose_extremism"):
        plan = decide(said(intent), fresh())
        assert plan.kind == intent
        assert plan.claim is None and not plan.flags


def test_resources_ask_for_the_country_when_unknown() -> None:
    plan = decide(said("ask_resources"), fresh())
    assert plan.ask_country and plan.buttons == ("country",)


def test_resources_use_the_country_named_in_the_message() -> None:
    plan = decide(said("ask_help_leaving", country="DE"), fresh())
    assert plan.kind == "help_leaving"
    assert plan.country == "DE" and not plan.ask_country
    assert plan.resource_kinds == ("exit", "family")


def test_resources_use_the_remembered_country() -> None:
    state = fresh()
    state.country = "FR"
    assert decide(Command("resources"), state).country == "FR"


def test_help_in_crisis_includes_crisis_lines() -> None:
    state = fresh()
    state.in_crisis = True
    plan = decide(said("ask_resources", country="GB"), state)
    assert set(plan.resource_kinds) >= {"exit", "crisis", "emergency"}


def test_a_country_button_answers_the_question_that_asked_for_it() -> None:
    state = fresh()
    state.last_reply_kind = "help_leaving"
    plan = decide(Button("country:NL"), state)
    assert (plan.kind, plan.country) == ("help_leaving", "NL")
    assert decide(Button("country:other"), fresh()).country == "global"


def test_fallback_and_unknown_intents_ask_to_clarify() -> None:
    assert decide(said("nlu_fallback", 0.3), fresh()).kind == "fallback"
    assert decide(said("some_future_intent"), fresh()).kind == "fallback"


def test_unavailable_nlu_gets_a_safe_reply() -> None:
    assert decide(said(None, 0.0), fresh()).kind == "nlu_unavailable"


def test_identity_is_answered_honestly_and_offers_a_person() -> None:
    plan = decide(said("ask_bot_identity"), fresh())
    assert plan.kind == "identity" and "human" in plan.buttons


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        (Command("start"), "welcome"),
        (Command("start", "campaign"), "welcome"),
        (Command("help"), "help"),
        (Command("privacy"), "privacy"),
        (Command("forget"), "forget_confirm"),
        (Command("human"), "human_requested"),
        (Command("nonsense"), "help"),
        (Button("forget_yes"), "forget_done"),
        (Button("forget_no"), "forget_cancelled"),
        (Button("human"), "human_requested"),
        (Button("garbage:data"), "fallback"),
        (NonText("sticker"), "non_text"),
    ],
)
def test_commands_buttons_and_non_text(event: object, kind: str) -> None:
    assert decide(event, fresh()).kind == kind  # type: ignore[arg-type]


def test_another_story_continues_the_last_claim() -> None:
    state = fresh()
    state.last_claim = "claim_religious_duty"
    plan = decide(Button("another_story"), state)
    assert (plan.kind, plan.claim) == ("counter_message", "claim_religious_duty")


def test_every_intent_has_a_row_in_the_table() -> None:
    """No intent the model can predict falls through to the generic fallback by accident."""
    for intent in ALL_INTENTS:
        assert decide(said(intent), fresh()).kind != "fallback", intent
    assert CLAIM_INTENTS <= RISK_INTENTS


def said_in(text: str, intent: str) -> Message:
    return Message(Understanding(text, intent, 0.9))


TAGALOG = "ano ang ginagawa mo ngayong gabi kapatid ko"


@pytest.mark.parametrize(
    "intent", ["benign_religious", "out_of_scope", "nlu_fallback", "greet", "question_defectors"]
)
def test_a_message_in_another_language_gets_help_and_a_person_not_a_guess(intent: str) -> None:
    plan = decide(said_in(TAGALOG, intent), fresh())
    assert plan.kind == "other_language"
    assert plan.buttons == ("help", "human")


@pytest.mark.parametrize(
    ("intent", "kind"),
    [
        ("crisis_self_harm", "safety_self_harm"),
        ("claim_good_life", "counter_message"),
        ("request_human", "human_requested"),
    ],
)
def test_crisis_risk_and_requests_in_another_language_are_answered_as_usual(
    intent: str, kind: str
) -> None:
    state = fresh()
    state.country = "GB"
    assert decide(said_in(TAGALOG, intent), state).kind == kind


def test_an_english_message_is_never_answered_as_another_language() -> None:
    text = "wallah akhi the dawla is the only ones who care"
    assert decide(said_in(text, "benign_religious"), fresh()).kind == "benign_religious"


def test_help_after_a_message_in_another_language_gives_crisis_lines_at_once() -> None:
    state = fresh()
    state.last_reply_kind = "other_language"
    plan = decide(Button("help"), state)
    assert plan.kind == "resources"
    assert not plan.ask_country
    assert "crisis" in plan.resource_kinds and "emergency" in plan.resource_kinds
    state.last_reply_kind = "counter_message"
    assert decide(Button("help"), state).ask_country
