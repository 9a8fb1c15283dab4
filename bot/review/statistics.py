"""Aggregates for the statistics page: never a text, never a pseudonym.

Every query leaves out test traffic (`messages.is_test`) and counts by UTC day. Content
outcomes answer "what did users do after we sent this item?": the next thing the same user
sent after the bot's message (a button or a message asking for another story, for help or
for a person, any other message, or nothing: left).
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, false, func, select

from bot.nlu.intents import CRISIS_INTENTS, RISK_INTENTS
from bot.policy.decision import ANOTHER_STORY, HELP, HUMAN
from bot.storage.database import Database
from bot.storage.models import Message, User

OUTCOMES = ("another_story", "help", "human", "wrote_again", "left")
"""What a user did after receiving a content item, in the order the page shows them."""
_HELP_INTENTS = ("ask_resources", "ask_help_leaving")
_HELP_COMMANDS = ("/resources", "/help")


@dataclass(frozen=True)
class Period:
    """Whole UTC days from `start` to `end`, both included."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("the period ends before it starts")

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=UTC)

    @property
    def before(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=UTC)

    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    @classmethod
    def last(cls, days: int, today: date | None = None) -> Period:
        end = today or datetime.now(UTC).date()
        return cls(end - timedelta(days=days - 1), end)


@dataclass(frozen=True)
class DayActivity:
    day: date
    conversations: int
    """Users who wrote to the bot that day."""
    messages_in: int
    messages_out: int
    crisis: int
    """Incoming messages understood as a crisis."""
    risk: int
    """Incoming messages understood as a recruitment claim or interest."""


@dataclass(frozen=True)
class ContentOutcome:
    content_id: str
    sent: int
    another_story: int
    help: int
    human: int
    wrote_again: int
    left: int


@dataclass(frozen=True)
class CampaignActivity:
    campaign: str
    conversations: int
    """Users who came through the campaign and wrote in the period."""
    messages_in: int
    risk_users: int
    crisis_users: int


def day_of(database: Database, column: Any) -> ColumnElement[str]:
    """`YYYY-MM-DD` of a timestamp, in UTC, on either backend."""
    if database.dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", column)


def _real_in(period: Period) -> ColumnElement[bool]:
    return and_(
        Message.is_test == false(),
        Message.created_at >= period.since,
        Message.created_at < period.before,
    )


async def daily_activity(database: Database, period: Period) -> list[DayActivity]:
    day = day_of(database, Message.created_at).label("day")
    incoming = Message.direction == "in"
    statement = (
        select(
            day,
            func.count(func.distinct(case((incoming, Message.user_id)))),
            func.count(case((incoming, 1))),
            func.count(case((Message.direction == "out", 1))),
            func.count(case((and_(incoming, Message.intent.in_(CRISIS_INTENTS)), 1))),
            func.count(case((and_(incoming, Message.intent.in_(RISK_INTENTS)), 1))),
        )
        .where(_real_in(period))
        .group_by(day)
    )
    async with database.session() as session:
        found = {row[0]: row[1:] for row in (await session.execute(statement)).all()}
    return [
        DayActivity(d, *(int(v) for v in found.get(d.isoformat(), (0, 0, 0, 0, 0))))
        for d in period.days()
    ]


async def intents_by_day(database: Database, period: Period) -> dict[str, dict[date, int]]:
    """Incoming messages per intent per day (intents never seen in the period are absent)."""
    day = day_of(database, Message.created_at).label("day")
    statement = (
        select(day, Message.intent, func.count())
        .where(_real_in(period), Message.direction == "in", Message.intent.is_not(None))
        .group_by(day, Message.intent)
    )
    result: dict[str, dict[date, int]] = defaultdict(dict)
    async with database.session() as session:
        for d, intent, count in (await session.execute(statement)).all():
            result[intent][date.fromisoformat(d)] = int(count)
    return dict(result)


def outcome_of(kind: str | None, text: str | None, intent: str | None) -> str:
    """What the user's next message after a content item means (`kind` None: there was none)."""
    if kind is None:
        return "left"
    if kind == "callback" and text == ANOTHER_STORY:
        return "another_story"
    if kind == "callback" and text is not None and (text == HELP or text.startswith("country:")):
        return "help"
    if intent in _HELP_INTENTS or (kind == "command" and text in _HELP_COMMANDS):
        return "help"
    if (kind == "callback" and text == HUMAN) or intent == "request_human" or text == "/human":
        return "human"
    return "wrote_again"


async def content_outcomes(database: Database, period: Period) -> list[ContentOutcome]:
    """Per content item sent in the period: how often, and what the user did next.

    What the user did next may come after the period's end, so the window reads on past it.
    """
    following = (
        select(
            Message.direction,
            Message.created_at,
            Message.content_ids,
            func.lead(Message.kind)
            .over(partition_by=Message.user_id, order_by=Message.id)
            .label("next_kind"),
            func.lead(Message.text)
            .over(partition_by=Message.user_id, order_by=Message.id)
            .label("next_text"),
            func.lead(Message.intent)
            .over(partition_by=Message.user_id, order_by=Message.id)
            .label("next_intent"),
        )
        .where(Message.is_test == false(), Message.created_at >= period.since)
        .subquery()
    )
    statement = select(
        following.c.content_ids,
        following.c.next_kind,
        following.c.next_text,
        following.c.next_intent,
    ).where(following.c.direction == "out", following.c.created_at < period.before)
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    async with database.session() as session:
        for content_ids, kind, text, intent in (await session.execute(statement)).all():
            if not content_ids:
                continue
            outcome = outcome_of(kind, text, intent)
            for content_id in content_ids:
                outcomes[content_id]["sent"] += 1
                outcomes[content_id][outcome] += 1
    return sorted(
        (
            ContentOutcome(content_id, c["sent"], *(c[o] for o in OUTCOMES))
            for content_id, c in outcomes.items()
        ),
        key=lambda o: (-o.sent, o.content_id),
    )


async def campaign_activity(database: Database, period: Period) -> list[CampaignActivity]:
    incoming = and_(_real_in(period), Message.direction == "in")
    statement = (
        select(
            User.campaign,
            func.count(func.distinct(Message.user_id)),
            func.count(),
            func.count(func.distinct(case((Message.intent.in_(RISK_INTENTS), Message.user_id)))),
            func.count(func.distinct(case((Message.intent.in_(CRISIS_INTENTS), Message.user_id)))),
        )
        .join(Message, Message.user_id == User.id)
        .where(incoming, User.campaign.is_not(None))
        .group_by(User.campaign)
        .order_by(User.campaign)
    )
    async with database.session() as session:
        return [
            CampaignActivity(str(c), int(a), int(b), int(r), int(x))
            for c, a, b, r, x in (await session.execute(statement)).all()
        ]


def to_csv(rows: Sequence[Any], header: Iterable[str] | None = None) -> str:
    """Dataclass rows as CSV with a header line (the field names unless given)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header is None:
        header = [f.name for f in fields(rows[0])] if rows else []
    writer.writerow(list(header))
    for row in rows:
        writer.writerow([_cell(v) for v in astuple(row)])
    return out.getvalue()


def _cell(value: Any) -> Any:
    # A spreadsheet runs a cell starting with = + - @ as a formula; ids and tags are data.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value
