"""An index on users.campaign, so the inbox lists the campaigns without reading every user.

Revision ID: 0006_campaign_index
Revises: 0005_content
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006_campaign_index"
down_revision: str | Sequence[str] | None = "0005_content"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_users_campaign", "users", ["campaign"])


def downgrade() -> None:
    op.drop_index("ix_users_campaign", table_name="users")
