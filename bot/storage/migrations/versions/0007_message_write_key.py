"""Give messages a unique write key, so that a replayed write is stored once.

Revision ID: 0007_message_write_key
Revises: 0006_campaign_index
Create Date: 2025-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_message_write_key"
down_revision: str | Sequence[str] | None = "0006_campaign_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("write_key", sa.String(length=40), nullable=True))
    op.create_index("ix_messages_write_key", "messages", ["write_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_messages_write_key", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("write_key")
