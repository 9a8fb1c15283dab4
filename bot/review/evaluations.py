"""Held-out scores per model version, so a retrain that is worse is seen before it ships.

`python -m bot nlu evaluate FILE --record` stores one row per run; the dashboard lists the
latest run of each model on a set, oldest model first, each compared with the model before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from bot.nlu.evaluation import Scores
from bot.storage.database import Database
from bot.storage.models import utcnow
from bot.storage.review_models import NLUEvaluation

HIGHER_IS_BETTER = ("macro_f1", "risk_recall", "crisis_recall", "accuracy")
LOWER_IS_BETTER = ("false_alarm_rate",)
TOLERANCE = 0.0005
"""Changes smaller than the rounding of the stored scores are no change."""


@dataclass(frozen=True)
class ModelScores:
    model: str
    dataset: str
    recorded_at: datetime
    examples: int
    accuracy: float
    macro_f1: float
    risk_recall: float
    crisis_recall: float
    false_alarm_rate: float
    changes: dict[str, float]
    """Each score minus the previous model's (empty for the first model)."""
    worse: tuple[str, ...]
    """The scores that got worse than the previous model's."""


async def record_scores(database: Database, model: str, dataset: str, scores: Scores) -> int:
    async with database.session() as session, session.begin():
        row = NLUEvaluation(
            model=model,
            dataset=dataset,
            recorded_at=utcnow(),
            examples=scores.examples,
            accuracy=round(scores.accuracy, 4),
            macro_f1=round(scores.macro_f1, 4),
            risk_recall=round(scores.risk_recall, 4),
            crisis_recall=round(scores.crisis_recall, 4),
            false_alarm_rate=round(scores.benign_false_alarm_rate, 4),
        )
        session.add(row)
        await session.flush()
        return row.id


async def scores_by_model(database: Database, dataset: str | None = None) -> list[ModelScores]:
    """The latest scores of every model on each set, in the order the models were first
    scored, with the change against the model scored before it on the same set."""
    latest = (
        select(func.max(NLUEvaluation.id))
        .group_by(NLUEvaluation.model, NLUEvaluation.dataset)
        .scalar_subquery()
    )
    statement = select(NLUEvaluation).where(NLUEvaluation.id.in_(latest))
    if dataset is not None:
        statement = statement.where(NLUEvaluation.dataset == dataset)
    first_scored = select(
        NLUEvaluation.model, NLUEvaluation.dataset, func.min(NLUEvaluation.id)
    ).group_by(NLUEvaluation.model, NLUEvaluation.dataset)
    async with database.session() as session:
        rows = (await session.scalars(statement)).all()
        order = {(m, d): first for m, d, first in (await session.execute(first_scored)).all()}
    rows = sorted(rows, key=lambda r: (r.dataset, order[(r.model, r.dataset)]))
    result: list[ModelScores] = []
    previous: NLUEvaluation | None = None
    for row in rows:
        if previous is not None and previous.dataset != row.dataset:
            previous = None
        changes: dict[str, float] = {}
        worse: list[str] = []
        if previous is not None:
            for name in (*HIGHER_IS_BETTER, *LOWER_IS_BETTER):
                change = getattr(row, name) - getattr(previous, name)
                changes[name] = change
                if (name in HIGHER_IS_BETTER and change < -TOLERANCE) or (
                    name in LOWER_IS_BETTER and change > TOLERANCE
                ):
                    worse.append(name)
        result.append(
            ModelScores(
                model=row.model,
                dataset=row.dataset,
                recorded_at=row.recorded_at,
                examples=row.examples,
                accuracy=row.accuracy,
                macro_f1=row.macro_f1,
                risk_recall=row.risk_recall,
                crisis_recall=row.crisis_recall,
                false_alarm_rate=row.false_alarm_rate,
                changes=changes,
                worse=tuple(worse),
            )
        )
        previous = row
    return result
