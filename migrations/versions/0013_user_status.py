"""users.status (ACTIVE, SUSPENDED, DEACTIVATED), its reason and time, and last_login_at: the
Admin API's user management

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE ... ADD COLUMN (no batch mode): on SQLite a batch would copy the table
    # and lose the expression indexes it cannot reflect (lower(username), lower(email)).
    op.add_column(
        "users", sa.Column("status", sa.String(length=16), nullable=False, server_default="ACTIVE")
    )
    op.add_column("users", sa.Column("status_reason", sa.String(length=500), nullable=True))
    op.add_column(
        "users", sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("users", sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f("ix_users_status"), "users", ["status"])


def downgrade() -> None:
    op.drop_index(op.f("ix_users_status"), table_name="users")
    for column in ("last_login_at", "status_changed_at", "status_reason", "status"):
        op.drop_column("users", column)  # SQLite 3.35+ drops a column in place
