"""The trained model plus the crisis safety net on the held-out set (never trained on).

The floors are set from measurement (see README, "NLU") a little below what the current model
scores, so a change to the data or pipeline that makes things worse fails here before it
reaches users.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.nlu.client import NLUClient
from bot.nlu.evaluation import Scores, load_labelled, predict, score

HELDOUT = Path(__file__).parent / "data" / "nlu_heldout.yml"

# The set is the batches written from 2026-11-28 on (2,315 messages by twenty-four writers in new
# voices, 72% hard), each decontaminated against everything written before it; the seven batches
# before them now train the model (README, "NLU", fifteenth round). The shipped model (fifteenth
# round, 8,675 examples, crisis floor 0.1) scores 0.927 / 0.978 / 0.979 / 4.1% on it. The floors
# sit under that with room for a retrain on other hardware; they guard against regressions, the
# issue's targets are the goal.
MACRO_F1_FLOOR = 0.90
RISK_RECALL_FLOOR = 0.96
CRISIS_RECALL_FLOOR = 0.96
BENIGN_FALSE_ALARM_CEILING = 0.055

pytestmark = pytest.mark.nlu


@pytest.fixture(scope="module")
async def heldout_scores(nlu_client: NLUClient) -> Scores:
    examples = load_labelled(HELDOUT)
    understood = await predict(nlu_client, [e.text for e in examples])
    return score(examples, [u.intent for u in understood])


def test_macro_f1_stays_above_its_floor(heldout_scores: Scores) -> None:
    assert heldout_scores.macro_f1 >= MACRO_F1_FLOOR, heldout_scores.summary()


def test_risk_messages_are_recognised_as_risk(heldout_scores: Scores) -> None:
    assert heldout_scores.risk_recall >= RISK_RECALL_FLOOR, heldout_scores.summary()


def test_crisis_messages_are_recognised_as_crisis(heldout_scores: Scores) -> None:
    assert heldout_scores.crisis_recall >= CRISIS_RECALL_FLOOR, heldout_scores.summary()


def test_benign_messages_are_rarely_flagged(heldout_scores: Scores) -> None:
    assert heldout_scores.benign_false_alarm_rate <= BENIGN_FALSE_ALARM_CEILING, (
        heldout_scores.summary()
    )
