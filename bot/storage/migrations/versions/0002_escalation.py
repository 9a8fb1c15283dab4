"""Risk level, takeover state, mute and encrypted contact on users; the alerts table.

Revision ID: 0002_escalation
Revises: 0001_initial
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_escalation"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("risk_level", sa.String(length=16), nullable=False, server_default="none")
        )
        batch.add_column(sa.Column("risk_reasons", JSON, nullable=False, server_default="[]"))
        batch.add_column(sa.Column("risk_signals", JSON, nullable=False, server_default="{}"))
        batch.add_column(
            sa.Column("handling", sa.String(length=16), nullable=False, server_default="bot")
        )
        batch.add_column(sa.Column("handling_since", TIMESTAMP, nullable=True))
        batch.add_column(sa.Column("handled_by", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("muted", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("contact", sa.Text(), nullable=True))
    # The defaults only filled existing rows; new rows get theirs from the application.
    with op.batch_alter_table("users") as batch:
        for column in ("risk_level", "risk_reasons", "risk_signals", "handling", "muted"):
            batch.alter_column(column, server_default=None)
    op.create_index("ix_users_risk_level", "users", ["risk_level"])
    # Users already in crisis state before this revision are at the crisis level.
    op.execute("UPDATE users SET risk_level = 'crisis' WHERE in_crisis")

    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reasons", JSON, nullable=False),
        sa.Column("notified_at", TIMESTAMP, nullable=True),
        sa.Column("escalated_at", TIMESTAMP, nullable=True),
        sa.Column("acknowledged_at", TIMESTAMP, nullable=True),
        sa.Column("acknowledged_by", sa.String(length=64), nullable=True),
        sa.Column("resolved_at", TIMESTAMP, nullable=True),
        sa.Column("resolved_by", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'acknowledged', 'resolved')", name="ck_alerts_status"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_alerts_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
    )
    op.create_index("ix_alerts_status_created_at", "alerts", ["status", "created_at"])
    op.create_index("ix_alerts_user_id_kind", "alerts", ["user_id", "kind"])


def downgrade() -> None:
    op.drop_index("ix_alerts_user_id_kind", table_name="alerts")
    op.drop_index("ix_alerts_status_created_at", table_name="alerts")
    op.drop_table("alerts")
    op.drop_index("ix_users_risk_level", table_name="users")
    with op.batch_alter_table("users") as batch:
        for column in (
            "contact",
            "muted",
            "handled_by",
            "handling_since",
            "handling",
            "risk_signals",
            "risk_reasons",
            "risk_level",
        ):
            batch.drop_column(column)
