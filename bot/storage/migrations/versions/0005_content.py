"""Content library in the database: items, revisions, events, and the live version counter.

Revision ID: 0005_content
Revises: 0004_dashboard_accounts
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005_content"
down_revision: str | Sequence[str] | None = "0004_dashboard_accounts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out rather than imported from bot.storage: a migration keeps creating the schema of
# its time however the models change later.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "content_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("live_revision_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            "status IN ('draft', 'in_review', 'approved', 'retired')",
            name="ck_content_items_status",
        ),
        sa.CheckConstraint(
            "kind IN ('testimony', 'fact', 'resource', 'reply', 'country')",
            name="ck_content_items_kind",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_content_items"),
        sa.UniqueConstraint("kind", "key", name="uq_content_items_kind_key"),
    )
    op.create_table(
        "content_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("approved_by", sa.String(length=64), nullable=True),
        sa.Column("approved_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["content_items.id"],
            name="fk_content_revisions_item_id_content_items",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_content_revisions"),
        sa.UniqueConstraint("item_id", "number", name="uq_content_revisions_item_id_number"),
    )
    op.create_table(
        "content_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["content_items.id"],
            name="fk_content_events_item_id_content_items",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_content_events"),
    )
    op.create_index("ix_content_events_item_id_id", "content_events", ["item_id", "id"])
    op.create_table(
        "content_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_content_state"),
    )


def downgrade() -> None:
    op.drop_table("content_state")
    op.drop_index("ix_content_events_item_id_id", table_name="content_events")
    op.drop_table("content_events")
    op.drop_table("content_revisions")
    op.drop_table("content_items")
