"""Tables of the moderators' review work: status, notes, intent annotations, NLU scores.

Kept apart from `bot.storage.models` (the bot's own tables) because only the dashboard and
the NLU tools write them. Everything about a user hangs off `users.id` or `messages.id` with
ON DELETE CASCADE, so /forget and the retention sweep remove it with the user's messages.
`bot.storage` imports this module, so the tables are always part of `Base.metadata`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    literal_column,
)
from sqlalchemy.orm import Mapped, mapped_column

from bot.safety.risk import RISK_LEVELS
from bot.storage.models import Base, Message, User, UTCDateTime, utcnow


def risk_rank_sql() -> str:
    """`users.risk_level` as a number (0 none ... 4 crisis), in SQL with literal values.

    Literal, not bound parameters: the database uses an index on an expression only for a
    query that has the very same expression, values included.
    """
    whens = " ".join(f"WHEN '{level}' THEN {n}" for n, level in enumerate(RISK_LEVELS))
    return f"CASE risk_level {whens} ELSE 0 END"


RISK_RANK: ColumnElement[int] = literal_column(f"({risk_rank_sql()})", Integer)

# The inbox's order, most severe first, then most recent (`bot.review.inbox`); the index lets
# a page be read without sorting the whole table.
INBOX_ORDER_INDEX = Index("ix_users_inbox_order", RISK_RANK, User.last_seen_at, User.id)
# The inbox of one campaign, in the inbox's order; also how the campaigns in use are listed
# (`bot.review.inbox.campaigns` skips through its first column).
CAMPAIGN_INDEX = Index("ix_users_campaign", User.campaign, RISK_RANK, User.last_seen_at, User.id)
EXPRESSION_INDEXES = frozenset({"ix_users_inbox_order", "ix_users_campaign"})
"""Indexes on an expression, which Alembic cannot compare (tests/test_storage.py)."""
# The low-confidence queue and the statistics read incoming messages by id and by intent.
MESSAGE_INTENT_INDEX = Index("ix_messages_intent", Message.intent)


class ConversationReview(Base):
    """A moderator's status of one conversation: when it was last reviewed, and a flag.

    A conversation counts as reviewed while `reviewed_at` is not older than the user's last
    message: anything the user says afterwards makes it new again.
    """

    __tablename__ = "conversation_reviews"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reviewed_by: Mapped[str | None] = mapped_column(String(64))
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    flagged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    flagged_by: Mapped[str | None] = mapped_column(String(64))


class ModeratorNote(Base):
    """A private note of a moderator about a conversation; never shown to the user."""

    __tablename__ = "moderator_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    author: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)


class IntentAnnotation(Base):
    """A moderator's verdict on the intent of one incoming message.

    One per message (a later verdict replaces it). `intent` equal to `model_intent` means the
    moderator confirmed the model; otherwise it is a correction. `python -m bot nlu
    export-annotations` turns these into training data.
    """

    __tablename__ = "intent_annotations"

    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    intent: Mapped[str] = mapped_column(String(64))
    model_intent: Mapped[str | None] = mapped_column(String(64))
    annotator: Mapped[str] = mapped_column(String(64))
    annotated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class NLUEvaluation(Base):
    """Scores of one model on one labelled set (`python -m bot nlu evaluate --record`)."""

    __tablename__ = "nlu_evaluations"
    __table_args__ = (Index("ix_nlu_evaluations_model_dataset", "model", "dataset"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(128))
    dataset: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    examples: Mapped[int] = mapped_column(Integer)
    accuracy: Mapped[float] = mapped_column(Float)
    macro_f1: Mapped[float] = mapped_column(Float)
    risk_recall: Mapped[float] = mapped_column(Float)
    crisis_recall: Mapped[float] = mapped_column(Float)
    false_alarm_rate: Mapped[float] = mapped_column(Float)
