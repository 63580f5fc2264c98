"""webhook and callback secrets stored sealed (encrypted); deliveries know their host (the
delivery pool's per-host limit); orders count their callbacks (capped per order)

Revision ID: 0009
Revises: 0008

The key derives from PETSTORE_JWT_SECRET (services/shared/secrets.py), which the migration takes
from ``config.attributes["jwt_secret"]`` (manage.py migrate) or the environment, and only when
there are rows to rewrite.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import context, op

from services.shared.events import host_of
from services.shared.secrets import SecretBox

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

SUBSCRIPTIONS = sa.table(
    "webhook_subscriptions", sa.column("id", sa.Uuid()), sa.column("secret", sa.String())
)
DELIVERIES = sa.table(
    "webhook_deliveries",
    sa.column("id", sa.Uuid()),
    sa.column("url", sa.String()),
    sa.column("host", sa.String()),
    sa.column("secret", sa.String()),
)


def _box() -> SecretBox:
    secret = context.config.attributes.get("jwt_secret")
    if not secret:
        from settings import Settings

        secret = Settings.from_env().jwt_secret
    return SecretBox(str(secret))


def _rewrite(convert: Callable[[SecretBox, str], str]) -> None:
    bind = op.get_bind()
    box: SecretBox | None = None
    for table in (SUBSCRIPTIONS, DELIVERIES):
        rows = bind.execute(
            sa.select(table.c.id, table.c.secret).where(table.c.secret.is_not(None))
        ).all()
        for row_id, secret in rows:
            box = box or _box()
            changed = convert(box, secret)
            if changed != secret:
                bind.execute(table.update().where(table.c.id == row_id).values(secret=changed))


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("callbacks_registered", sa.Integer(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("host", sa.String(length=300), server_default="", nullable=False)
        )
        batch_op.alter_column(
            "secret", existing_type=sa.String(length=128), type_=sa.String(length=255)
        )
    with op.batch_alter_table("webhook_subscriptions", schema=None) as batch_op:
        batch_op.alter_column(
            "secret",
            existing_type=sa.String(length=128),
            type_=sa.String(length=255),
            existing_nullable=False,
        )
    bind = op.get_bind()
    for row_id, url in bind.execute(sa.select(DELIVERIES.c.id, DELIVERIES.c.url)).all():
        bind.execute(DELIVERIES.update().where(DELIVERIES.c.id == row_id).values(host=host_of(url)))
    _rewrite(lambda box, secret: secret if box.is_sealed(secret) else box.seal(secret))


def downgrade() -> None:
    _rewrite(lambda box, secret: box.open(secret) if box.is_sealed(secret) else secret)
    with op.batch_alter_table("webhook_subscriptions", schema=None) as batch_op:
        batch_op.alter_column(
            "secret",
            existing_type=sa.String(length=255),
            type_=sa.String(length=128),
            existing_nullable=False,
        )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.alter_column(
            "secret", existing_type=sa.String(length=255), type_=sa.String(length=128)
        )
        batch_op.drop_column("host")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("callbacks_registered")
