"""Create users, messages and processed_updates.

Revision ID: 0001_initial
Revises:
Create Date: 2025-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001_initial"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out rather than imported from bot.storage.models: a migration must keep creating
# the schema of its time however the models change later.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("last_seen_at", TIMESTAMP, nullable=False),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("campaign", sa.String(length=64), nullable=True),
        sa.Column("in_crisis", sa.Boolean(), nullable=False),
        sa.Column("human_requested", sa.Boolean(), nullable=False),
        sa.Column("last_claim", sa.String(length=64), nullable=True),
        sa.Column("last_reply_kind", sa.String(length=64), nullable=True),
        sa.Column("shown_testimonies", JSON, nullable=False),
        sa.Column("risk_flag", sa.Boolean(), nullable=False),
        sa.Column("crisis_flag", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
    )
    op.create_index("ix_users_pseudonym", "users", ["pseudonym"], unique=True)

    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("intent", sa.String(length=64), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("ranking", JSON, nullable=False),
        sa.Column("entities", JSON, nullable=False),
        sa.Column("intent_source", sa.String(length=16), nullable=True),
        sa.Column("model", sa.String(length=128), nullable=True),
        sa.Column("content_ids", JSON, nullable=False),
        sa.Column("flags", JSON, nullable=False),
        sa.Column("update_id", sa.BigInteger(), nullable=True),
        sa.Column("is_test", sa.Boolean(), nullable=False),
        sa.CheckConstraint("direction IN ('in', 'out')", name="ck_messages_direction"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_messages_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
    )
    op.create_index("ix_messages_user_id_created_at", "messages", ["user_id", "created_at"])
    op.create_index("ix_messages_created_at", "messages", ["created_at"])

    op.create_table(
        "processed_updates",
        sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("processed_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("update_id", name="pk_processed_updates"),
    )

    if op.get_bind().dialect.name == "postgresql":
        # ANALYZE copies sample values into pg_statistic, where a deleted message's text
        # would outlive /forget. Nothing filters on these columns, so the planner needs no
        # statistics about them.
        for table, column in (
            ("messages", "text"),
            ("messages", "entities"),
            ("users", "pseudonym"),
        ):
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STATISTICS 0")


def downgrade() -> None:
    op.drop_table("processed_updates")
    op.drop_index("ix_messages_created_at", table_name="messages")
    op.drop_index("ix_messages_user_id_created_at", table_name="messages")
    op.drop_table("messages")
    op.drop_index("ix_users_pseudonym", table_name="users")
    op.drop_table("users")
