"""orders.hold_ended_at: when an unpaid hold lapsed or its client cancelled it (the re-hold
cooldown)

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("hold_ended_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("orders", "hold_ended_at")  # SQLite 3.35+ drops columns in place
