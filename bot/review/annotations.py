"""Learning from corrections: the low-confidence queue, and annotations as training data.

The queue lists incoming text messages the model was unsure about (confidence below
`LOW_CONFIDENCE_THRESHOLD`, the fallback intent, or no answer because the NLU server was
down) that nobody has annotated yet. `export_annotations` writes every annotation as Rasa
NLU training data: text and intent only, and only texts that are safe to train on (see
`ExportReport`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import yaml
from sqlalchemy import ColumnElement, false, or_, select

from bot.nlu.evaluation import load_labelled
from bot.nlu.intents import ALL_INTENTS, FALLBACK_INTENT
from bot.review.inbox import PSEUDONYM_SHOWN
from bot.review.transcript import alternatives
from bot.storage.database import Database
from bot.storage.models import Message, User
from bot.storage.review_models import IntentAnnotation

PAGE_SIZE = 50

# Rasa reads `[text](entity)` and `[text]{"entity": ...}` inside an example as an entity.
_ENTITY_MARKUP = re.compile(r"[\[\]{}]")
# What could identify a person or reach them: @handles, e-mail addresses, links, and runs
# of digits long enough to be a phone number or an id.
_IDENTIFYING = re.compile(
    r"@\w{3,}|\b[\w.+-]+@[\w-]+\.\w+|https?://|www\.|t\.me/|\+?\d(?:[\s().-]?\d){6,}",
    re.IGNORECASE,
)
_ANNOTATION = re.compile(r"\[([^\]]+)\]\{[^}]*\}|\[([^\]]+)\]\([^)]*\)")


@dataclass(frozen=True)
class QueueItem:
    message_id: int
    user_id: int
    key: str
    """The full pseudonym: the conversation's address in the dashboard."""
    pseudonym: str
    created_at: datetime
    text: str
    intent: str | None
    confidence: float | None
    alternatives: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class QueuePage:
    items: list[QueueItem]
    next_before: int | None
    """The `before` argument of the next page (older messages); None on the last page."""


def _in_queue(threshold: float) -> list[ColumnElement[bool]]:
    return [
        Message.direction == "in",
        Message.kind == "text",
        Message.is_test == false(),
        or_(
            Message.intent.is_(None),
            Message.intent == FALLBACK_INTENT,
            Message.confidence < threshold,
        ),
        ~select(IntentAnnotation.message_id)
        .where(IntentAnnotation.message_id == Message.id)
        .exists(),
    ]


async def low_confidence_queue(
    database: Database, threshold: float, before: int | None = None, page_size: int = PAGE_SIZE
) -> QueuePage:
    """Unannotated uncertain messages, newest first, keyset-paginated by message id."""
    statement = (
        select(Message, User.pseudonym)
        .join(User, User.id == Message.user_id)
        .where(*_in_queue(threshold))
        .order_by(Message.id.desc())
        .limit(page_size + 1)
    )
    if before is not None:
        statement = statement.where(Message.id < before)
    async with database.session() as session:
        rows = (await session.execute(statement)).all()
    more = len(rows) > page_size
    items = [
        QueueItem(
            message_id=m.id,
            user_id=m.user_id,
            key=pseudonym,
            pseudonym=pseudonym[:PSEUDONYM_SHOWN],
            created_at=m.created_at,
            text=m.text or "",
            intent=m.intent,
            confidence=m.confidence,
            alternatives=alternatives(list(m.ranking), m.intent),
        )
        for m, pseudonym in rows[:page_size]
    ]
    return QueuePage(items, items[-1].message_id if more and items else None)


# -- export -----------------------------------------------------------------------------------


def normalise(text: str) -> str:
    """A text as compared for duplicates: entity markup removed, case and spacing folded."""
    plain = _ANNOTATION.sub(lambda m: m.group(1) or m.group(2), text)
    return " ".join(plain.casefold().split())


def training_texts(nlu_dir: Path, exclude: Path | None = None) -> set[str]:
    """Every example in the Rasa NLU files of `nlu_dir` (but `exclude`), normalised."""
    found: set[str] = set()
    for path in sorted(nlu_dir.glob("*.yml")):
        if exclude is not None and path.resolve() == exclude.resolve():
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for block in data.get("nlu", []) or []:
            if isinstance(block, dict) and "intent" in block:
                for line in str(block.get("examples", "")).splitlines():
                    if line.strip().startswith("- "):
                        found.add(normalise(line.strip()[2:]))
    return found


def evaluation_texts(paths: Iterable[Path]) -> set[str]:
    return {normalise(e.text) for path in paths for e in load_labelled(path)}


@dataclass
class ExportReport:
    """What `export_annotations` wrote and what it left out, and why."""

    written: dict[str, int] = field(default_factory=dict)
    """Examples written per intent."""
    already_trained: int = 0
    """Texts already in the training data (under any intent)."""
    in_evaluation_sets: int = 0
    """Texts in the held-out or development set: training on them would void their scores."""
    identifying: int = 0
    """Texts with a handle, address, link or long number: they could identify someone."""
    conflicting: int = 0
    """Texts annotated with different intents on different messages: left for a person."""
    duplicates: int = 0
    """Repeats of a text already written."""

    @property
    def total_written(self) -> int:
        return sum(self.written.values())

    def summary(self) -> str:
        return (
            f"wrote {self.total_written} examples ({len(self.written)} intents); skipped "
            f"{self.already_trained} already in the training data, {self.in_evaluation_sets} "
            f"in the held-out or development set, {self.identifying} that could identify "
            f"someone, {self.conflicting} annotated with conflicting intents, "
            f"{self.duplicates} repeats"
        )


async def annotated_texts(database: Database) -> list[tuple[str, str]]:
    """(text, intent) of every annotation, oldest first; nothing else leaves the database."""
    statement = (
        select(Message.text, IntentAnnotation.intent)
        .join(IntentAnnotation, IntentAnnotation.message_id == Message.id)
        .where(Message.text.is_not(None), Message.is_test == false())
        .order_by(IntentAnnotation.annotated_at, Message.id)
    )
    async with database.session() as session:
        return [(str(t), str(i)) for t, i in (await session.execute(statement)).all()]


def select_examples(
    annotated: list[tuple[str, str]], trained: set[str], evaluated: set[str]
) -> tuple[dict[str, list[str]], ExportReport]:
    """The annotations that may become training data, by intent, and the report."""
    report = ExportReport()
    intents_of: dict[str, set[str]] = {}
    for text, intent in annotated:
        intents_of.setdefault(normalise(text), set()).add(intent)
    chosen: dict[str, list[str]] = {}
    seen: set[str] = set()
    for text, intent in annotated:
        clean = " ".join(_ENTITY_MARKUP.sub(" ", text).split())
        key = normalise(clean)
        if intent not in ALL_INTENTS or not key:
            continue
        if key in seen:
            report.duplicates += 1
        elif key in evaluated:
            report.in_evaluation_sets += 1
        elif key in trained:
            report.already_trained += 1
        elif _IDENTIFYING.search(clean):
            report.identifying += 1
        elif len(intents_of[normalise(text)]) > 1:
            report.conflicting += 1
        else:
            chosen.setdefault(intent, []).append(clean)
        seen.add(key)
    report.written = {intent: len(texts) for intent, texts in sorted(chosen.items())}
    return chosen, report


def render_nlu_yaml(examples: dict[str, list[str]]) -> str:
    """Rasa 3 NLU training data, one block per intent, sorted for stable diffs."""
    lines = [
        'version: "3.1"',
        "",
        "# Written by `python -m bot nlu export-annotations` from moderators' corrections in",
        "# the dashboard: text and intent only. Regenerated on every export; edit in the",
        "# dashboard, not here.",
        "",
        "nlu:",
    ]
    for intent in sorted(examples):
        lines.append(f"- intent: {intent}")
        lines.append("  examples: |")
        lines.extend(f"    - {text}" for text in sorted(examples[intent], key=str.casefold))
    if not examples:
        lines[-1] = "nlu: []"
    return "\n".join(lines) + "\n"


def write_annotations(
    annotated: list[tuple[str, str]], out: Path, nlu_dir: Path, evaluation_sets: Iterable[Path]
) -> ExportReport:
    """Write `annotated` (from `annotated_texts`) to `out` as Rasa NLU data; the training
    data in `nlu_dir` (other than `out` itself) and the evaluation sets decide what is left
    out. The file is rewritten whole, so an export is repeatable."""
    examples, report = select_examples(
        annotated, training_texts(nlu_dir, exclude=out), evaluation_texts(evaluation_sets)
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_nlu_yaml(examples), encoding="utf-8")
    return report
