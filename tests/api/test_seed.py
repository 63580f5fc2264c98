"""``python manage.py seed --pets N``: synthetic pets in batches, into a tenant; they count, list
through the API (its response validator on) and every run adds N more."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Pet
from models.database import Database
from settings import ROOT, Settings
from tests.conftest import Api, run_db

PETS = 2500


def manage_seed(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "PETSTORE_VAR_DIR": str(settings.var_dir),
        "PETSTORE_JWT_SECRET": settings.jwt_secret,
    }
    return subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", "seed", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def count_pets(settings: Settings, tenant: str) -> int:
    def count(session: Session) -> int:
        return session.scalar(select(func.count()).select_from(Pet)) or 0

    async def go(db: Database) -> int:
        return await db.run(tenant, count)

    return int(run_db(settings, go))


def test_seed_pets_in_batches_into_a_tenant(settings: Settings, api: Api) -> None:
    tenant = api.tenant or ""
    args = ("--pets", str(PETS), "--batch-size", "700", "--tenant", tenant)
    done = manage_seed(settings, *args)
    assert done.returncode == 0, done.stderr
    assert f"seeded {PETS} synthetic pets" in done.stdout
    # Not a terminal: a plain line per batch (700, 1400, 2100, 2500).
    assert done.stderr.count("pets inserted") == 4, done.stderr
    assert f"... {PETS}/{PETS} pets inserted" in done.stderr
    assert count_pets(settings, tenant) == PETS
    assert count_pets(settings, "") != count_pets(settings, tenant)  # not in the shared pool

    # Through the API, every field validated against the spec; the variety is real.
    seen: list[dict[str, Any]] = []
    for page in (1, 2, 25):
        r = api.request("GET", f"/pets?limit=100&page={page}")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["pagination"]["totalItems"] == PETS
        seen += body["data"]
    assert len(seen) == 300
    assert len({p["id"] for p in seen}) == 300
    assert len(Counter(p["species"] for p in seen)) >= 4
    assert len({p["name"] for p in seen}) == 300
    assert len({p["price"] for p in seen}) > 100
    assert len({p["ageMonths"] for p in seen}) > 50
    statuses = Counter(
        p["status"]
        for status in ("AVAILABLE", "ADOPTED")
        for p in api.request("GET", f"/pets?limit=5&status={status}").json()["data"]
    )
    assert statuses == {"AVAILABLE": 5, "ADOPTED": 5}

    # A second run adds as many again.
    again = manage_seed(settings, "--pets", "300", "--tenant", tenant)
    assert again.returncode == 0, again.stderr
    assert count_pets(settings, tenant) == PETS + 300


def test_pets_goes_with_seed_only(settings: Settings) -> None:
    env = {**os.environ, "DATABASE_URL": settings.database_url}
    env |= {"PETSTORE_VAR_DIR": str(settings.var_dir), "PETSTORE_JWT_SECRET": settings.jwt_secret}
    r = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--pets", "5"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode != 0
    assert "--pets" in r.stderr
    assert manage_seed(settings, "--pets", "0").returncode != 0
