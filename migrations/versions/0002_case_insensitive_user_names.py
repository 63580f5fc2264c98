"""Usernames and emails unique per tenant regardless of case.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "uq_users_tenant_username_ci", "users", ["tenant_id", sa.text("lower(username)")],
        unique=True,
    )
    op.create_index(
        "uq_users_tenant_email_ci", "users", ["tenant_id", sa.text("lower(email)")], unique=True
    )


def downgrade() -> None:
    op.drop_index("uq_users_tenant_email_ci", table_name="users")
    op.drop_index("uq_users_tenant_username_ci", table_name="users")
