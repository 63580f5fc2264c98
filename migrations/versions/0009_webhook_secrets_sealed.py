"""webhook and callback secrets stored sealed (encrypted); deliveries know their host (the
delivery pool's per-host limit); orders count their callbacks (capped per order)

Revision ID: 0009
Revises: 0008

The key derives from PETSTORE_JWT_SECRET (services/shared/secrets.py), which the migration takes
from ``config.attributes["jwt_secret"]`` (manage.py migrate), else PETSTORE_JWT_SECRET, else an
existing var/jwt-secret file (PETSTORE_VAR_DIR), and only when there are rows to rewrite; with
none of those it refuses rather than seal under a new key.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

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


def _key() -> str:
    """The server's key, never a new one: sealing with a key the server does not use would
    make every stored secret unreadable."""
    secret = context.config.attributes.get("jwt_secret") or os.environ.get("PETSTORE_JWT_SECRET")
    if secret:
        return str(secret)
    from settings import ROOT

    path = Path(os.environ.get("PETSTORE_VAR_DIR") or ROOT / "var") / "jwt-secret"
    if path.is_file() and path.read_text().strip():
        return path.read_text().strip()
    raise RuntimeError(
        "Migration 0009 seals the stored webhook signing secrets with the key derived from "
        "PETSTORE_JWT_SECRET, and none is known: set PETSTORE_JWT_SECRET (or PETSTORE_VAR_DIR to "
        f"the server's var directory; {path} does not exist) or run `python manage.py migrate` "
        "with the server's environment. No new key is generated here."
    )


def _box() -> SecretBox:
    return SecretBox(_key())


def _box_if_needed() -> SecretBox | None:
    """The key, asked for before any schema change (SQLite's DDL is not transactional: a
    refusal must leave the database as it was), and only when there are secrets to rewrite."""
    bind = op.get_bind()
    for table in (SUBSCRIPTIONS, DELIVERIES):
        if bind.execute(sa.select(table.c.id).where(table.c.secret.is_not(None))).first():
            return _box()
    return None


def _rewrite(box: SecretBox | None, convert: Callable[[SecretBox, str], str]) -> None:
    if box is None:
        return
    bind = op.get_bind()
    for table in (SUBSCRIPTIONS, DELIVERIES):
        rows = bind.execute(
            sa.select(table.c.id, table.c.secret).where(table.c.secret.is_not(None))
        ).all()
        for row_id, secret in rows:
            changed = convert(box, secret)
            if changed != secret:
                bind.execute(table.update().where(table.c.id == row_id).values(secret=changed))


def upgrade() -> None:
    box = _box_if_needed()
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
    _rewrite(box, lambda box, secret: secret if box.is_sealed(secret) else box.seal(secret))


def downgrade() -> None:
    _rewrite(_box_if_needed(), lambda box, secret: box.open(secret) if box.is_sealed(secret) else secret)
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
