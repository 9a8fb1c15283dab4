"""Scoring the NLU (model plus crisis safety net) on the held-out set, and report tables.

The scores that matter for this bot are not only macro-F1: a missed crisis is the worst
error, a missed recruitment claim the next, and a benign message (faith talk, small talk)
flagged as risk is a harm of its own, so each has its own number.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.nlu.client import NLUClient, apply_crisis_floor
from bot.nlu.intents import CRISIS_INTENTS, FALLBACK_INTENT, RISK_INTENTS
from bot.nlu.understanding import Understanding


@dataclass(frozen=True)
class LabelledExample:
    text: str
    intent: str
    hard: bool = False


@dataclass(frozen=True)
class IntentScore:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Scores:
    """Held-out scores; recalls are binary (any risk intent counts as risk, likewise crisis)."""

    examples: int
    accuracy: float
    macro_f1: float
    risk_recall: float
    crisis_recall: float
    benign_false_alarm_rate: float
    """Share of messages that are neither risk nor crisis predicted as risk or crisis."""
    hard_accuracy: float
    per_intent: dict[str, IntentScore] = field(default_factory=dict)
    errors: list[tuple[str, str, str | None]] = field(default_factory=list)
    """(text, gold, predicted) of every miss."""

    def summary(self) -> dict[str, float]:
        return {
            "examples": self.examples,
            "accuracy": round(self.accuracy, 4),
            "macro_f1": round(self.macro_f1, 4),
            "risk_recall": round(self.risk_recall, 4),
            "crisis_recall": round(self.crisis_recall, 4),
            "benign_false_alarm_rate": round(self.benign_false_alarm_rate, 4),
            "hard_accuracy": round(self.hard_accuracy, 4),
        }


def load_labelled(path: Path) -> list[LabelledExample]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [
        LabelledExample(str(item["text"]), str(item["intent"]), bool(item.get("hard", False)))
        for item in data["examples"]
    ]


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def score(examples: list[LabelledExample], predicted: list[str | None]) -> Scores:
    """Compare predictions with gold labels; `None` or `nlu_fallback` count as misses."""
    golds = [e.intent for e in examples]
    labels = sorted(set(golds))
    per_intent: dict[str, IntentScore] = {}
    for label in labels:
        tp = sum(1 for g, p in zip(golds, predicted, strict=True) if g == label and p == label)
        fp = sum(1 for g, p in zip(golds, predicted, strict=True) if g != label and p == label)
        fn = sum(1 for g, p in zip(golds, predicted, strict=True) if g == label and p != label)
        precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        f1 = _ratio(2 * precision * recall, precision + recall) if precision + recall else 0.0
        per_intent[label] = IntentScore(precision, recall, f1, tp + fn)
    pairs = list(zip(golds, predicted, strict=True))
    risk = [p for g, p in pairs if g in RISK_INTENTS]
    crisis = [p for g, p in pairs if g in CRISIS_INTENTS]
    benign = [p for g, p in pairs if g not in RISK_INTENTS | CRISIS_INTENTS]
    hard = [(e.intent, p) for e, p in zip(examples, predicted, strict=True) if e.hard]
    alarms = RISK_INTENTS | CRISIS_INTENTS
    return Scores(
        examples=len(examples),
        accuracy=_ratio(sum(g == p for g, p in pairs), len(pairs)),
        macro_f1=sum(s.f1 for s in per_intent.values()) / len(per_intent) if per_intent else 0.0,
        risk_recall=_ratio(sum(p in RISK_INTENTS for p in risk), len(risk)),
        crisis_recall=_ratio(sum(p in CRISIS_INTENTS for p in crisis), len(crisis)),
        benign_false_alarm_rate=_ratio(sum(p in alarms for p in benign), len(benign)),
        hard_accuracy=_ratio(sum(g == p for g, p in hard), len(hard)),
        per_intent=per_intent,
        errors=[
            (e.text, e.intent, p) for e, p in zip(examples, predicted, strict=True) if e.intent != p
        ],
    )


async def predict(client: NLUClient, texts: list[str], concurrency: int = 4) -> list[Understanding]:
    """Understand every text through the same path users take (model plus safety net)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(text: str) -> Understanding:
        async with gate:
            return await client.understand(text)

    return list(await asyncio.gather(*(one(t) for t in texts)))


def scores_table(scores: Scores) -> str:
    """The held-out summary and per-intent table as Markdown."""
    lines = [
        "| metric | value |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in scores.summary().items()),
        "",
        "| intent | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for name, s in sorted(scores.per_intent.items()):
        lines.append(f"| {name} | {s.precision:.2f} | {s.recall:.2f} | {s.f1:.2f} | {s.support} |")
    return "\n".join(lines)


def crossval_table(report: dict[str, Any]) -> str:
    """Rasa's `intent_report.json` (from `rasa test nlu`) as a per-intent Markdown table."""
    lines = ["| intent | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    summary_rows = ("accuracy", "macro avg", "weighted avg", "micro avg")
    for name, row in sorted(report.items()):
        if name in summary_rows or not isinstance(row, dict):
            continue
        lines.append(
            f"| {name} | {row['precision']:.2f} | {row['recall']:.2f} | "
            f"{row['f1-score']:.2f} | {row['support']} |"
        )
    for name in ("macro avg", "weighted avg"):
        row = report.get(name)
        if isinstance(row, dict):
            lines.append(
                f"| **{name}** | {row['precision']:.2f} | {row['recall']:.2f} | "
                f"{row['f1-score']:.2f} | {row['support']} |"
            )
    if isinstance(report.get("accuracy"), float):
        lines.append(f"\nAccuracy: {report['accuracy']:.3f}")
    return "\n".join(lines)


def confusions(scores: Scores, top: int = 15) -> list[tuple[tuple[str, str | None], int]]:
    return Counter((gold, pred) for _text, gold, pred in scores.errors).most_common(top)


def with_threshold(
    understood: Understanding, threshold: float, ambiguity: float, crisis_floor: float = 1.0
) -> str | None:
    """The intent `understood` would get under another FallbackClassifier setting.

    Rasa keeps the model's own ranking when the fallback fires, so thresholds can be tried
    on one set of predictions instead of one training run each. The safety net's decision
    stands whatever the threshold.
    """
    if understood.source == "safety_net" or understood.intent is None:
        return understood.intent
    floored = apply_crisis_floor(understood, crisis_floor)
    if floored.source == "crisis_floor":
        return floored.intent
    ranked = [s for s in understood.ranking if s.name != FALLBACK_INTENT]
    if not ranked:
        return understood.intent
    top = ranked[0]
    second = ranked[1].confidence if len(ranked) > 1 else 0.0
    if top.confidence < threshold or top.confidence - second < ambiguity:
        return FALLBACK_INTENT
    return top.name


def tune_fallback(
    examples: list[LabelledExample], understood: list[Understanding]
) -> list[tuple[float, float, float, Scores]]:
    """Scores for a grid of (threshold, ambiguity_threshold, crisis floor), best first.

    Best means: highest crisis recall, then macro-F1; crisis recall comes first.
    """
    results = []
    for threshold in [t / 100 for t in range(30, 75, 5)]:
        for ambiguity in [a / 100 for a in range(0, 25, 5)]:
            for floor in [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 1.0]:
                predicted = [with_threshold(u, threshold, ambiguity, floor) for u in understood]
                results.append((threshold, ambiguity, floor, score(examples, predicted)))
    results.sort(key=lambda r: (r[3].macro_f1, r[3].crisis_recall), reverse=True)
    return results
