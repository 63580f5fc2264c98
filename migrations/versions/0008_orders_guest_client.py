"""orders.guest_client: who placed a guest order while it is unpaid (the cap on unpaid orders)

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("guest_client", sa.String(64), nullable=True))
    op.create_index("ix_orders_guest_client", "orders", ["guest_client"])


def downgrade() -> None:
    op.drop_index("ix_orders_guest_client", table_name="orders")
    op.drop_column("orders", "guest_client")  # SQLite 3.35+ drops columns in place
