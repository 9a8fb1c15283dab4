"""The intent vocabulary shared by the NLU data, the policy and the evaluation.

The names are the ones in `nlu/*.yml`; `tests/test_nlu_data.py` checks the two agree.
"""

from __future__ import annotations

RISK_INTENTS: frozenset[str] = frozenset(
    {
        "interest_joining",
        "sympathy_general",
        "claim_protects_muslims",
        "claim_fights_oppressors",
        "claim_brotherhood_equality",
        "claim_religious_duty",
        "claim_good_life",
    }
)
CLAIM_INTENTS: frozenset[str] = frozenset(i for i in RISK_INTENTS if i.startswith("claim_"))
CRISIS_INTENTS: frozenset[str] = frozenset({"crisis_self_harm", "crisis_violence"})
HELP_INTENTS: frozenset[str] = frozenset({"ask_help_leaving", "ask_resources", "request_human"})
META_INTENTS: frozenset[str] = frozenset(
    {
        "ask_bot_identity",
        "ask_privacy",
        "greet",
        "goodbye",
        "thanks",
        "affirm",
        "deny",
        "insult",
        "oppose_extremism",
        "benign_religious",
        "out_of_scope",
    }
)
ALL_INTENTS: frozenset[str] = (
    RISK_INTENTS | CRISIS_INTENTS | HELP_INTENTS | META_INTENTS | {"question_defectors"}
)
FALLBACK_INTENT = "nlu_fallback"
"""What Rasa's FallbackClassifier predicts when no intent is confident enough."""
