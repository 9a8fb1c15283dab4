"""`apply_risk_family`: a fallback the model was sure of as a recruitment claim stays a claim."""

from __future__ import annotations

from bot.nlu.client import apply_risk_family
from bot.nlu.understanding import IntentScore, Understanding


def fallback(*ranking: tuple[str, float]) -> Understanding:
    scores = (IntentScore("nlu_fallback", 0.5), *(IntentScore(n, c) for n, c in ranking))
    return Understanding("text", "nlu_fallback", 0.5, ranking=scores)


def test_a_fallback_split_between_risk_intents_becomes_the_top_risk_intent() -> None:
    understood = fallback(
        ("claim_protects_muslims", 0.41), ("sympathy_general", 0.38), ("greet", 0.1)
    )
    kept = apply_risk_family(understood, 0.7)
    assert (kept.intent, kept.confidence, kept.source) == (
        "claim_protects_muslims",
        0.41,
        "risk_family",
    )


def test_a_fallback_below_the_family_floor_stays_a_fallback() -> None:
    understood = fallback(
        ("claim_protects_muslims", 0.41), ("greet", 0.3), ("sympathy_general", 0.2)
    )
    assert apply_risk_family(understood, 0.7) is understood


def test_a_fallback_whose_best_intent_is_not_risk_stays_a_fallback() -> None:
    understood = fallback(
        ("benign_religious", 0.45), ("claim_religious_duty", 0.4), ("claim_good_life", 0.35)
    )
    assert apply_risk_family(understood, 0.7) is understood


def test_a_confident_prediction_is_never_changed() -> None:
    understood = Understanding(
        "text",
        "greet",
        0.9,
        ranking=(IntentScore("greet", 0.9), IntentScore("claim_good_life", 0.05)),
    )
    assert apply_risk_family(understood, 0.0) is understood


def test_floor_one_turns_the_rule_off() -> None:
    understood = fallback(("claim_good_life", 0.5), ("claim_protects_muslims", 0.45))
    assert apply_risk_family(understood, 1.0) is understood
