"""The risk-level rules (`bot.safety.risk`): each row of the table, and the plan patterns."""

from __future__ import annotations

import pytest

from bot.nlu.understanding import Understanding
from bot.safety.risk import PLAN, assess, record_signals, severity, states_plan_or_date


def understood(text: str, intent: str | None) -> Understanding:
    return Understanding(text=text, intent=intent, confidence=0.9)


def signals_after(*messages: tuple[str, str | None]) -> dict[str, int]:
    signals: dict[str, int] = {}
    for text, intent in messages:
        signals = record_signals(signals, understood(text, intent))
    return signals


def test_no_risk_message_means_level_none() -> None:
    signals = signals_after(("hi", "greet"), ("what is this", "out_of_scope"), ("x", None))
    assert signals == {}
    assert assess(signals, in_crisis=False).level == "none"
    assert assess(signals, in_crisis=False).reasons == ()


def test_one_claim_is_low_with_the_claim_as_reason() -> None:
    signals = signals_after(("they protect the sunnis", "claim_protects_muslims"))
    result = assess(signals, in_crisis=False)
    assert (result.level, result.reasons) == ("low", ("claim_protects_muslims x1",))


def test_interest_in_joining_once_is_elevated() -> None:
    signals = signals_after(("how do i join them", "interest_joining"))
    assert assess(signals, in_crisis=False).level == "elevated"
    assert assess(signals, in_crisis=False).reasons == ("interest_joining x1",)


def test_four_risk_messages_are_elevated() -> None:
    signals = signals_after(
        *[("it is a duty", "claim_religious_duty")] * 3, ("life is good", "claim_good_life")
    )
    result = assess(signals, in_crisis=False)
    assert result.level == "elevated"
    assert result.reasons == ("claim_good_life x1", "claim_religious_duty x3")
    three = signals_after(*[("it is a duty", "claim_religious_duty")] * 3)
    assert assess(three, in_crisis=False).level == "low"


def test_interest_in_joining_three_times_is_high() -> None:
    signals = signals_after(*[("i want to go and join", "interest_joining")] * 3)
    result = assess(signals, in_crisis=False)
    assert (result.level, result.reasons) == ("high", ("interest_joining x3",))


def test_a_stated_plan_in_a_risk_message_is_high() -> None:
    signals = signals_after(("i booked my flight to turkey, i go next week", "interest_joining"))
    assert signals == {"interest_joining": 1, PLAN: 1}
    result = assess(signals, in_crisis=False)
    assert result.level == "high"
    assert result.reasons == ("stated a plan or date", "interest_joining x1")


def test_a_date_outside_a_risk_message_is_not_a_plan() -> None:
    signals = signals_after(("see you tomorrow", "goodbye"), ("next week maybe", "affirm"))
    assert signals == {}
    assert assess(signals, in_crisis=False).level == "none"


def test_crisis_state_is_crisis_whatever_else_was_said() -> None:
    signals = signals_after(("i want to end it all", "crisis_self_harm"), ("x", "claim_good_life"))
    result = assess(signals, in_crisis=True)
    assert result.level == "crisis"
    assert result.reasons == ("crisis intent (self-harm) x1", "claim_good_life x1")


def test_crisis_state_without_a_counted_intent_still_says_why() -> None:
    assert assess({}, in_crisis=True).reasons == ("in crisis state",)


def test_a_crisis_closed_by_a_moderator_stays_elevated() -> None:
    signals = signals_after(("i will hurt them", "crisis_violence"))
    result = assess(signals, in_crisis=False)
    assert result.level == "elevated"
    assert result.reasons == (
        "earlier crisis, closed by a moderator",
        "crisis intent (violence) x1",
    )


def test_denying_a_crisis_does_not_lower_the_level() -> None:
    signals = signals_after(("i want to die", "crisis_self_harm"), ("no i am fine", "deny"))
    assert assess(signals, in_crisis=True).level == "crisis"


def test_record_signals_returns_a_new_mapping() -> None:
    before = {"interest_joining": 1}
    after = record_signals(before, understood("join", "interest_joining"))
    assert before == {"interest_joining": 1}
    assert after == {"interest_joining": 2}


def test_levels_are_ordered() -> None:
    levels = ["none", "low", "elevated", "high", "crisis"]
    assert sorted(levels, key=severity) == levels


@pytest.mark.parametrize(
    "text",
    [
        "I bought a ticket to Istanbul",
        "my flight is on friday",
        "I'm leaving for Syria soon",
        "going to the dawla next month",
        "we make hijrah next week",
        "I leave on 12 march",
        "travelling to sham in 3 days",
        "a brother will pick me up at the airport",
        "i got my passport, i go tomorrow",
        "leaving 03/04",
    ],
)
def test_plans_and_dates_are_recognised(text: str) -> None:
    assert states_plan_or_date(text)


@pytest.mark.parametrize(
    "text",
    [
        "the dawla protects muslims",
        "life in the caliphate is good",
        "I want to join them",
        "why do you say that",
        "it is a religious duty",
    ],
)
def test_claims_without_a_plan_are_not_plans(text: str) -> None:
    assert not states_plan_or_date(text)
