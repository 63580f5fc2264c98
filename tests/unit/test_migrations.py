"""Data migrations on a private SQLite file: what they rewrite, and back."""

from __future__ import annotations

import uuid
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from settings import ROOT


def _config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    return config


def test_photo_paths_become_image_names_and_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/m.db"
    config = _config(url)
    command.upgrade(config, "0005")
    engine = sa.create_engine(url)
    pet_id = uuid.uuid4()
    name = "a" * 64 + ".jpg"
    legacy = [f"pets/{pet_id}/images/{name}", "https://cdn.example.com/dog.jpg"]
    pets = sa.Table("pets", sa.MetaData(), autoload_with=engine)
    with engine.begin() as conn:
        conn.execute(
            pets.insert().values(
                id=pet_id.hex, tenant_id="", name="Rex", species="DOG", age_months=1,
                price=10, currency="USD", status="AVAILABLE", photos=legacy, version=1,
                created_at=sa.func.now(), updated_at=sa.func.now(),
            )
        )  # fmt: skip
    typed = sa.table("pets", sa.column("photos", sa.JSON()))

    def photos() -> list[str]:
        with engine.connect() as conn:
            return list(conn.execute(sa.select(typed.c.photos)).scalar_one())

    command.upgrade(config, "head")
    assert photos() == [name, "https://cdn.example.com/dog.jpg"]
    command.downgrade(config, "0005")
    assert photos() == legacy
    engine.dispose()
