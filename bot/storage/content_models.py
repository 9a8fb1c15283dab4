"""The content library's tables: items, their immutable revisions, and every workflow step.

An item (a testimony, fact, resource, reply text or country) has a stable `(kind, key)`,
e.g. `("testimony", "npr-kills-everyone-who-says-no")`. Each save writes a new revision, so
the full history stays; `status` is the workflow state of the newest revision, and
`live_revision_id` points at the approved revision users get (kept while a newer revision
waits for review, cleared when the item is retired). `content_state.version` grows with every
change to what users get, so the running bot checks one integer instead of the library.
`bot/storage/migrations/versions/0005_content.py` creates the same tables.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.content.model import STATUSES
from bot.storage.models import Base, PortableJSON, UTCDateTime, utcnow

CONTENT_KINDS = ("testimony", "fact", "resource", "reply", "country")
"""Kinds of content item; the URL of an item is /content/{kind}/{key}."""

_STATUS_CHECK = "status IN (" + ", ".join(f"'{s}'" for s in STATUSES) + ")"
_KIND_CHECK = "kind IN (" + ", ".join(f"'{k}'" for k in CONTENT_KINDS) + ")"


class ContentItem(Base):
    """One piece of content across all its revisions."""

    __tablename__ = "content_items"
    __table_args__ = (
        UniqueConstraint("kind", "key", name="uq_content_items_kind_key"),
        CheckConstraint(_STATUS_CHECK, name="status"),
        CheckConstraint(_KIND_CHECK, name="kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(64))
    # Order within its kind: the bot serves the first approved, unseen testimony for a claim.
    position: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    # No foreign key: it would make the two tables refer to each other; the store keeps it right.
    live_revision_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ContentRevision(Base):
    """One saved version of an item's fields; never changed after it is written, except
    `approved_by`/`approved_at` when it is approved."""

    __tablename__ = "content_revisions"
    __table_args__ = (
        UniqueConstraint("item_id", "number", name="uq_content_revisions_item_id_number"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("content_items.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    # The item's fields as in responses/*.yml, without `id`/`code` and `status`.
    data: Mapped[dict[str, Any]] = mapped_column(PortableJSON)
    # An editor's note, kept as a YAML comment above the item on export (not shown to users).
    comment: Mapped[str | None] = mapped_column(Text)
    # A dashboard account name, or "system/import" for `python -m bot content import`.
    author: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    approved_by: Mapped[str | None] = mapped_column(String(64))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ContentEvent(Base):
    """One step in an item's history: created, edited, submitted, returned, approved, retired,
    imported; who did it, when, and the status before and after."""

    __tablename__ = "content_events"
    __table_args__ = (Index("ix_content_events_item_id_id", "item_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("content_items.id", ondelete="CASCADE"))
    revision_number: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)


class ContentState(Base):
    """A single row whose `version` grows whenever what users get changes."""

    __tablename__ = "content_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(Integer)
