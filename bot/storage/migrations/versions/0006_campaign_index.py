"""An index on users.campaign then the inbox's order: one campaign's inbox without a sort,
and the list of campaigns without reading every user.

Revision ID: 0006_campaign_index
Revises: 0005_content
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_campaign_index"
down_revision: str | Sequence[str] | None = "0005_content"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The risk level as a number, exactly as bot.storage.review_models.risk_rank_sql writes it.
RISK_RANK = (
    "(CASE risk_level WHEN 'none' THEN 0 WHEN 'low' THEN 1 WHEN 'elevated' THEN 2 "
    "WHEN 'high' THEN 3 WHEN 'crisis' THEN 4 ELSE 0 END)"
)


def upgrade() -> None:
    op.create_index(
        "ix_users_campaign", "users", ["campaign", sa.text(RISK_RANK), "last_seen_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_users_campaign", table_name="users")
