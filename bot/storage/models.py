"""The tables: who talks to the bot (by pseudonym only), what was said, which updates were handled.

No column holds a name, a username, a phone number or a Telegram id: a user is known by the
HMAC of their Telegram id (`bot.storage.pseudonym`). `bot/storage/migrations` creates the same
schema with explicit operations; `tests/test_storage.py` checks that the two agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

DIRECTIONS = ("in", "out")

# JSONB on PostgreSQL (binary, comparable), JSON stored as text on SQLite.
PortableJSON = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL keeps the offset (`timestamptz`); SQLite has no timestamp type and stores the
    wall-clock text without it, so values are converted to UTC on the way in and marked UTC on
    the way out. A naive datetime is refused: its meaning would depend on the server's clock.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    # Named constraints, so that later migrations can alter them on every backend.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class User(Base):
    """One person talking to the bot, known only by pseudonym."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pseudonym: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    country: Mapped[str | None] = mapped_column(String(2))
    campaign: Mapped[str | None] = mapped_column(String(64))
    in_crisis: Mapped[bool] = mapped_column(Boolean, default=False)
    human_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    last_claim: Mapped[str | None] = mapped_column(String(64))
    last_reply_kind: Mapped[str | None] = mapped_column(String(64))
    shown_testimonies: Mapped[list[str]] = mapped_column(PortableJSON, default=list)
    # For moderators: the user once said something a recruiter would want to hear, or
    # something that called for crisis resources. Set by `Store.record_message`, never cleared
    # by the bot.
    risk_flag: Mapped[bool] = mapped_column(Boolean, default=False)
    crisis_flag: Mapped[bool] = mapped_column(Boolean, default=False)
    # The risk level (bot.safety.risk.RISK_LEVELS) with its reasons, derived from the counts
    # in risk_signals; indexed because the moderators' inbox and queue sort by it.
    risk_level: Mapped[str] = mapped_column(String(16), default="none", index=True)
    risk_reasons: Mapped[list[str]] = mapped_column(PortableJSON, default=list)
    risk_signals: Mapped[dict[str, int]] = mapped_column(PortableJSON, default=dict)
    # Who answers the user (bot.escalation.HANDLING): "bot", "waiting" for a person after a
    # request, or "person" while a moderator has taken over; since when and by which account.
    handling: Mapped[str] = mapped_column(String(16), default="bot")
    handling_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handled_by: Mapped[str | None] = mapped_column(String(64))
    # A moderator muted the user: messages are stored, the bot does not answer (crisis aside).
    muted: Mapped[bool] = mapped_column(Boolean, default=False)
    # The Telegram chat id, encrypted under CONTACT_SECRET (bot.escalation.contact), so a
    # moderator's message can reach the user later; never stored or logged in the clear.
    contact: Mapped[str | None] = mapped_column(Text)


class Alert(Base):
    """Something a moderator must look at: a crisis, a high risk, a request for a person.

    One alert per event: while an alert of a kind is open for a user, no second one is raised.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_status_created_at", "status", "created_at"),
        Index("ix_alerts_user_id_kind", "user_id", "kind"),
        CheckConstraint("status IN ('open', 'acknowledged', 'resolved')", name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # crisis, high_risk or human_request
    kind: Mapped[str] = mapped_column(String(32))
    # crisis, high or request; a request nobody picked up is raised to high when escalated.
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="open")
    reasons: Mapped[list[str]] = mapped_column(PortableJSON, default=list)
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(64))


class Message(Base):
    """One message, from the user ("in") or from the bot ("out")."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_user_id_created_at", "user_id", "created_at"),
        Index("ix_messages_write_key", "write_key", unique=True),
        CheckConstraint("direction IN ('in', 'out')", name="direction"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    direction: Mapped[str] = mapped_column(String(3))
    # "in": text, command, callback or non_text; "out": the reply kind (counter_message, ...).
    kind: Mapped[str] = mapped_column(String(32))
    text: Mapped[str | None] = mapped_column(Text)
    intent: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None] = mapped_column(Float)
    ranking: Mapped[list[dict[str, Any]]] = mapped_column(PortableJSON, default=list)
    entities: Mapped[list[dict[str, Any]]] = mapped_column(PortableJSON, default=list)
    # nlu, safety_net, crisis_floor, unavailable, or deferred (classified after the NLU came
    # back; the reply was the safe one); NULL when nothing was understood (outgoing messages).
    intent_source: Mapped[str | None] = mapped_column(String(16))
    model: Mapped[str | None] = mapped_column(String(128))
    content_ids: Mapped[list[str]] = mapped_column(PortableJSON, default=list)
    flags: Mapped[list[str]] = mapped_column(PortableJSON, default=list)
    update_id: Mapped[int | None] = mapped_column(BigInteger)
    is_test: Mapped[bool] = mapped_column(Boolean, default=False)
    # Makes a write idempotent: the same message written twice (replayed from the write
    # buffer, or an update answered again after a crash) is stored once. NULL for old rows.
    write_key: Mapped[str | None] = mapped_column(String(40))


class ProcessedUpdate(Base):
    """A Telegram update already handled, so that one delivered twice is answered once."""

    __tablename__ = "processed_updates"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# -- the dashboard: staff accounts, their sessions, the audit log ---------------------------
# Staff are named people (they log in); nothing here names or identifies a bot user.

ROLES = ("admin", "moderator", "content_editor")


class Account(Base):
    """A person who uses the dashboard, with one role."""

    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'moderator', 'content_editor')", name="role"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # A password someone else chose (first-run admin, `users add` by an admin) must be changed.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DashboardSession(Base):
    """A logged-in browser. Kept in the database so that every replica knows it.

    `id` is the SHA-256 of the cookie's value: a copy of the database lets no one log in.
    """

    __tablename__ = "dashboard_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # Small per-session state of dashboard pages (e.g. the try-the-bot buttons on screen).
    data: Mapped[dict[str, Any]] = mapped_column(PortableJSON, default=dict)


class AuditEntry(Base):
    """Who did what to what, when. Never holds what a bot user wrote."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_action_created_at", "action", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # The account's name at the time (kept if the account is renamed or removed); NULL for
    # the system (first-run admin, command line) and for failed logins of unknown names.
    actor: Mapped[str | None] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(255))
    detail: Mapped[dict[str, Any]] = mapped_column(PortableJSON, default=dict)
    remote_addr: Mapped[str | None] = mapped_column(String(64))
