"""pets.photos keeps image names (``<sha256>.jpg``), not URL paths: the API builds the URLs

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import json
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

PETS = sa.table("pets", sa.column("id", sa.Uuid()), sa.column("photos", sa.JSON()))


def _rewrite(convert: Callable[[object, str], str]) -> None:
    bind = op.get_bind()
    for pet_id, photos in bind.execute(sa.select(PETS.c.id, PETS.c.photos)).all():
        values = json.loads(photos) if isinstance(photos, str) else photos
        if not values:
            continue
        changed = [convert(pet_id, p) for p in values]
        if changed != values:
            bind.execute(PETS.update().where(PETS.c.id == pet_id).values(photos=changed))


def upgrade() -> None:
    def name(_pet_id: object, photo: str) -> str:
        if "://" not in photo and photo.startswith("pets/") and "/images/" in photo:
            return photo.rsplit("/", 1)[1]
        return photo

    _rewrite(name)


def downgrade() -> None:
    def path(pet_id: object, photo: str) -> str:
        return photo if "://" in photo or "/" in photo else f"pets/{pet_id}/images/{photo}"

    _rewrite(path)
