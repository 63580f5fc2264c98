"""revoked_tokens: Revoke Token (logout) ends the token presented, not the account's others

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "revoked_tokens",
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_revoked_tokens")),
    )
    with op.batch_alter_table("revoked_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_revoked_tokens_expires_at"), ["expires_at"])
        batch_op.create_index(batch_op.f("ix_revoked_tokens_tenant_id"), ["tenant_id"])
        batch_op.create_index(batch_op.f("ix_revoked_tokens_user_id"), ["user_id"])


def downgrade() -> None:
    op.drop_table("revoked_tokens")
