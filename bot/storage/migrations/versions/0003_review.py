"""Moderator review: conversation status, notes, intent annotations, NLU scores per model.

Revision ID: 0003_review
Revises: 0002_escalation
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_review"
down_revision: str | Sequence[str] | None = "0002_escalation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    # The risk level as a number, exactly as bot.storage.review_models.risk_rank_sql writes it.
    risk_rank = (
        "(CASE risk_level WHEN 'none' THEN 0 WHEN 'low' THEN 1 WHEN 'elevated' THEN 2 "
        "WHEN 'high' THEN 3 WHEN 'crisis' THEN 4 ELSE 0 END)"
    )
    op.create_index("ix_users_inbox_order", "users", [sa.text(risk_rank), "last_seen_at", "id"])
    op.create_index("ix_messages_intent", "messages", ["intent"])

    op.create_table(
        "conversation_reviews",
        sa.Column("user_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("reviewed_at", TIMESTAMP, nullable=True),
        sa.Column("reviewed_by", sa.String(length=64), nullable=True),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("flagged_at", TIMESTAMP, nullable=True),
        sa.Column("flagged_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_conversation_reviews_user_id_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name="pk_conversation_reviews"),
    )

    op.create_table(
        "moderator_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_moderator_notes_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_moderator_notes"),
    )
    op.create_index("ix_moderator_notes_user_id", "moderator_notes", ["user_id"])

    op.create_table(
        "intent_annotations",
        sa.Column("message_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("intent", sa.String(length=64), nullable=False),
        sa.Column("model_intent", sa.String(length=64), nullable=True),
        sa.Column("annotator", sa.String(length=64), nullable=False),
        sa.Column("annotated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name="fk_intent_annotations_message_id_messages",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message_id", name="pk_intent_annotations"),
    )

    op.create_table(
        "nlu_evaluations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("dataset", sa.String(length=128), nullable=False),
        sa.Column("recorded_at", TIMESTAMP, nullable=False),
        sa.Column("examples", sa.Integer(), nullable=False),
        sa.Column("accuracy", sa.Float(), nullable=False),
        sa.Column("macro_f1", sa.Float(), nullable=False),
        sa.Column("risk_recall", sa.Float(), nullable=False),
        sa.Column("crisis_recall", sa.Float(), nullable=False),
        sa.Column("false_alarm_rate", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_nlu_evaluations"),
    )
    op.create_index("ix_nlu_evaluations_model_dataset", "nlu_evaluations", ["model", "dataset"])

    if op.get_bind().dialect.name == "postgresql":
        # As for messages.text (0001): no sample of a note in pg_statistic after /forget.
        op.execute("ALTER TABLE moderator_notes ALTER COLUMN text SET STATISTICS 0")


def downgrade() -> None:
    op.drop_index("ix_nlu_evaluations_model_dataset", table_name="nlu_evaluations")
    op.drop_table("nlu_evaluations")
    op.drop_table("intent_annotations")
    op.drop_index("ix_moderator_notes_user_id", table_name="moderator_notes")
    op.drop_table("moderator_notes")
    op.drop_table("conversation_reviews")
    op.drop_index("ix_messages_intent", table_name="messages")
    op.drop_index("ix_users_inbox_order", table_name="users")
