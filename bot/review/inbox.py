"""The moderators' inbox: one row per conversation, most severe first, then most recent.

Pages are read with keyset pagination: the cursor is the sort key of the last row shown, and
the next page starts strictly after it, walking `ix_users_inbox_order`. Unlike OFFSET, page
500 costs what page 1 costs (README, "Dashboard", has the measurements with 100,000
conversations).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    text,
    true,
    tuple_,
)

from bot.safety.risk import RISK_LEVELS
from bot.storage.database import Database
from bot.storage.models import Message, User
from bot.storage.review_models import RISK_RANK, ConversationReview

# The severity part of the inbox order, most severe first: the risk level (crisis, high,
# elevated, low, none). It must match `ix_users_inbox_order`. Before the risk level existed
# this was `(User.crisis_flag.expression, User.risk_flag.expression)`.
SEVERITY_ORDER: tuple[ColumnElement[Any], ...] = (RISK_RANK,)

FLAGS = ("crisis", "risk", "human_requested", "other_language", "flagged", "none")
"""crisis and risk: the bot flagged a message of the user as such at least once;
other_language: the bot answered a message with "I can only read English" (someone in the team
who reads it, or a translation, may find what the model could not, a crisis included)."""
STATUSES = ("new", "reviewed")
PAGE_SIZE = 50
PSEUDONYM_SHOWN = 10
"""Characters of the pseudonym shown: enough to tell conversations apart, not a full key."""


class BadCursor(ValueError):
    """A page cursor that was not produced by this module (edited or truncated)."""


@dataclass(frozen=True)
class InboxFilter:
    """What the moderator narrowed the inbox to; every field is optional."""

    flag: str | None = None
    level: str | None = None
    """A risk level (`bot.safety.risk.RISK_LEVELS`)."""
    intent: str | None = None
    status: str | None = None
    since: date | None = None
    until: date | None = None
    """Inclusive: conversations whose last message is on or before this day (UTC)."""
    campaign: str | None = None
    search: str | None = None
    """Words the user wrote (case-insensitive substring of any incoming message)."""

    def __post_init__(self) -> None:
        if self.flag is not None and self.flag not in FLAGS:
            raise ValueError(f"unknown flag {self.flag!r}")
        if self.level is not None and self.level not in RISK_LEVELS:
            raise ValueError(f"unknown risk level {self.level!r}")
        if self.status is not None and self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")


@dataclass(frozen=True)
class InboxRow:
    user_id: int
    key: str
    """The full pseudonym: the conversation's address in the dashboard."""
    pseudonym: str
    """Shortened to `PSEUDONYM_SHOWN` characters."""
    risk_level: str
    """none, low, elevated, high or crisis."""
    crisis_flag: bool
    risk_flag: bool
    handling: str
    """bot, waiting (for a person) or person (a moderator took over)."""
    human_requested: bool
    flagged: bool
    reviewed: bool
    last_seen_at: datetime
    campaign: str | None
    country: str | None
    messages: int
    last_intent: str | None
    last_text: str | None
    """The user's last message, for a one-line preview."""


@dataclass(frozen=True)
class InboxPage:
    rows: list[InboxRow]
    next_cursor: str | None
    """Pass to `inbox_page` for the following page; None on the last page."""


def is_reviewed() -> ColumnElement[bool]:
    """Reviewed, and the user has not written since."""
    return and_(
        ConversationReview.reviewed_at.is_not(None),
        ConversationReview.reviewed_at >= User.last_seen_at,
    )


def real_messages() -> ColumnElement[bool]:
    """The user has at least one message that is not test traffic."""
    return exists().where(Message.user_id == User.id, Message.is_test == false())


def _sort_key() -> tuple[ColumnElement[Any], ...]:
    return (*SEVERITY_ORDER, User.last_seen_at.expression, User.id.expression)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def like_pattern(words: str) -> str:
    """A LIKE pattern matching `words` anywhere, with the wildcards in `words` escaped."""
    escaped = words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _filtered(statement: Select[Any], where: InboxFilter) -> Select[Any]:
    conditions: list[ColumnElement[bool]] = [real_messages()]
    flag = where.flag
    if flag == "crisis":
        conditions.append(User.crisis_flag == true())
    elif flag == "risk":
        conditions.append(and_(User.risk_flag == true(), User.crisis_flag == false()))
    elif flag == "human_requested":
        conditions.append(User.human_requested == true())
    elif flag == "other_language":
        conditions.append(
            exists().where(
                Message.user_id == User.id,
                Message.direction == "out",
                Message.kind == "other_language",
            )
        )
    elif flag == "flagged":
        conditions.append(ConversationReview.flagged == true())
    elif flag == "none":
        conditions.append(and_(User.crisis_flag == false(), User.risk_flag == false()))
    if where.level is not None:
        conditions.append(User.risk_level == where.level)
    if where.status == "reviewed":
        conditions.append(is_reviewed())
    elif where.status == "new":
        conditions.append(or_(ConversationReview.reviewed_at.is_(None), ~is_reviewed()))
    if where.since is not None:
        conditions.append(User.last_seen_at >= _day_start(where.since))
    if where.until is not None:
        conditions.append(User.last_seen_at < _day_start(where.until + timedelta(days=1)))
    if where.campaign:
        conditions.append(User.campaign == where.campaign)
    if where.intent:
        conditions.append(
            exists().where(
                Message.user_id == User.id,
                Message.direction == "in",
                Message.intent == where.intent,
                Message.is_test == false(),
            )
        )
    if where.search and where.search.strip():
        conditions.append(
            exists().where(
                Message.user_id == User.id,
                Message.direction == "in",
                Message.is_test == false(),
                func.lower(Message.text).like(
                    like_pattern(where.search.strip().lower()), escape="\\"
                ),
            )
        )
    return statement.where(*conditions)


def encode_cursor(values: Sequence[Any]) -> str:
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    """The sort key encoded in `cursor`, checked against the key's shape and types."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise BadCursor("the page cursor is not valid") from exc
    key = _sort_key()
    if not isinstance(raw, list) or len(raw) != len(key):
        raise BadCursor("the page cursor is not valid")
    values: list[Any] = []
    for column, value in zip(key, raw, strict=True):
        # UTCDateTime (a TypeDecorator) knows its Python type through its implementation.
        python_type = getattr(column.type, "impl", column.type).python_type
        if python_type is datetime:
            try:
                parsed = datetime.fromisoformat(value)
            except (TypeError, ValueError) as exc:
                raise BadCursor("the page cursor is not valid") from exc
            if parsed.tzinfo is None:
                raise BadCursor("the page cursor is not valid")
            values.append(parsed)
        elif isinstance(value, python_type) and not (
            python_type is int and isinstance(value, bool)
        ):
            values.append(value)
        else:
            raise BadCursor("the page cursor is not valid")
    return values


def inbox_query(
    where: InboxFilter = InboxFilter(),  # frozen, so a shared default is safe
    cursor: str | None = None,
    page_size: int = PAGE_SIZE,
) -> Select[Any]:
    """The SELECT of one inbox page (one row more than `page_size`, to know if more follow)."""
    key = _sort_key()
    statement = select(
        *key,
        User.id.label("user_id"),
        User.risk_level,
        User.crisis_flag,
        User.risk_flag,
        User.handling,
        User.pseudonym,
        User.human_requested,
        User.campaign,
        User.country,
        ConversationReview.flagged,
        is_reviewed().label("reviewed"),
    ).outerjoin(ConversationReview, ConversationReview.user_id == User.id)
    statement = _filtered(statement, where)
    if cursor is not None:
        after = decode_cursor(cursor)
        statement = statement.where(
            tuple_(*key) < tuple_(*(literal(v, c.type) for v, c in zip(after, key, strict=True)))
        )
    return statement.order_by(*(k.desc() for k in key)).limit(page_size + 1)


async def inbox_page(
    database: Database,
    where: InboxFilter = InboxFilter(),  # frozen, so a shared default is safe
    cursor: str | None = None,
    page_size: int = PAGE_SIZE,
) -> InboxPage:
    """One page of conversations matching `where`, after the row `cursor` points at."""
    key = _sort_key()
    statement = inbox_query(where, cursor, page_size)
    async with database.session() as session:
        found = (await session.execute(statement)).all()
        more = len(found) > page_size
        found = found[:page_size]
        details = await _details(session, [row.user_id for row in found])
    rows = [
        InboxRow(
            user_id=row.user_id,
            key=row.pseudonym,
            pseudonym=row.pseudonym[:PSEUDONYM_SHOWN],
            risk_level=row.risk_level,
            crisis_flag=bool(row.crisis_flag),
            risk_flag=bool(row.risk_flag),
            handling=row.handling,
            human_requested=bool(row.human_requested),
            flagged=bool(row.flagged),
            reviewed=bool(row.reviewed),
            last_seen_at=row.last_seen_at,
            campaign=row.campaign,
            country=row.country,
            messages=details[row.user_id][0],
            last_intent=details[row.user_id][1],
            last_text=details[row.user_id][2],
        )
        for row in found
    ]
    next_cursor = encode_cursor(list(found[-1][: len(key)])) if more and found else None
    return InboxPage(rows, next_cursor)


async def _details(
    session: Any, user_ids: list[int]
) -> dict[int, tuple[int, str | None, str | None]]:
    """Message count and last incoming message of each user on the page (one query each)."""
    if not user_ids:
        return {}
    real = and_(Message.user_id.in_(user_ids), Message.is_test == false())
    counts = dict(
        (
            await session.execute(
                select(Message.user_id, func.count()).where(real).group_by(Message.user_id)
            )
        ).all()
    )
    last_in = (
        select(func.max(Message.id))
        .where(real, Message.direction == "in")
        .group_by(Message.user_id)
        .scalar_subquery()
    )
    lasts = {
        row.user_id: (row.intent, row.text)
        for row in (
            await session.execute(
                select(Message.user_id, Message.intent, Message.text).where(Message.id.in_(last_in))
            )
        ).all()
    }
    return {
        user_id: (counts.get(user_id, 0), *lasts.get(user_id, (None, None))) for user_id in user_ids
    }


# Each step finds the next campaign after the last one through `ix_users_campaign`: a handful
# of index lookups however many users there are (DISTINCT would read them all: 76 ms with
# 100,000 users on PostgreSQL).
_CAMPAIGNS = text(
    """
    WITH RECURSIVE found(campaign) AS (
        SELECT min(campaign) FROM users
        UNION ALL
        SELECT (SELECT min(u.campaign) FROM users AS u WHERE u.campaign > found.campaign)
        FROM found WHERE found.campaign IS NOT NULL
    )
    SELECT campaign FROM found WHERE campaign IS NOT NULL
    """
)


async def campaigns(database: Database) -> list[str]:
    """The campaign tags in use, in order, for the filter's choices."""
    async with database.session() as session:
        return [str(c) for c in (await session.scalars(_CAMPAIGNS)).all()]
