"""Operator commands: ``python manage.py migrate|seed|ensure-admin|audit-verify``.

``audit-verify`` walks every tenant's audit chain (services.admin.audit.verify) and prints OK
with the number of rows checked, or the first broken link (tenant, seq, id, what is wrong) and
exits 1.

``ensure-admin`` creates the PETSTORE_ADMIN_USERNAME account (or sets the existing admin's
password), as the server does at startup; it exits non-zero, naming the account, when that name
belongs to an existing non-admin account (unless PETSTORE_ADMIN_PROMOTE_EXISTING=1)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from decimal import Decimal

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from models import Pet
from models.base import SHARED_POOL
from models.database import Database
from services.accounts.users import AdminNameTaken, ensure_admin
from services.admin.audit import check_chains
from services.catalogue.pets import PetData
from settings import ROOT, ConfigError, Settings, make_private_dir

DEMO_PETS = [
    PetData(
        name="Whiskers",
        species="CAT",
        age_months=18,
        price=Decimal("75.00"),
        breed="Domestic Shorthair",
        size="MEDIUM",
        color="Orange Tabby",
        gender="MALE",
        good_with_kids=True,
        good_with_pets=True,
        description="Friendly and playful orange tabby looking for a loving home",
        medical_info={
            "spayedNeutered": True,
            "vaccinated": True,
            "microchipped": True,
            "specialNeeds": False,
        },
    ),
    PetData(
        name="Buddy",
        species="DOG",
        age_months=24,
        price=Decimal("150.00"),
        breed="Golden Retriever",
        size="LARGE",
        color="Golden",
        gender="MALE",
        good_with_kids=True,
        good_with_pets=True,
        description="Gentle, loves long walks",
    ),
    PetData(
        name="Luna",
        species="DOG",
        age_months=6,
        price=Decimal("200.00"),
        breed="Border Collie",
        size="MEDIUM",
        color="Black and White",
        gender="FEMALE",
        good_with_kids=True,
        good_with_pets=False,
        description="Clever and energetic puppy",
    ),
    PetData(
        name="Thumper",
        species="RABBIT",
        age_months=12,
        price=Decimal("40.00"),
        breed="Holland Lop",
        size="SMALL",
        color="Brown and White",
        gender="MALE",
        good_with_kids=True,
        good_with_pets=True,
        description="Calm lop-eared rabbit",
    ),
    PetData(
        name="Kiwi",
        species="BIRD",
        age_months=30,
        price=Decimal("60.00"),
        breed="Budgerigar",
        size="SMALL",
        color="Green",
        gender="FEMALE",
        good_with_kids=True,
        description="Chatty budgie who whistles tunes",
    ),
    PetData(
        name="Spike",
        species="REPTILE",
        age_months=48,
        price=Decimal("90.00"),
        breed="Bearded Dragon",
        size="MEDIUM",
        color="Tan",
        gender="UNKNOWN",
        good_with_kids=False,
        good_with_pets=False,
        description="Needs a heated terrarium",
    ),
    PetData(
        name="Mittens",
        species="CAT",
        age_months=84,
        price=Decimal("25.00"),
        breed="Maine Coon",
        size="LARGE",
        color="Grey",
        gender="FEMALE",
        good_with_kids=True,
        good_with_pets=True,
        status="PENDING",
        description="A calm senior lap cat",
    ),
]


def reset_postgres(url: str) -> None:
    """Drop and recreate the public schema (test and contract runs start clean)."""
    engine = create_engine(url, hide_parameters=True)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def migrate(settings: Settings) -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = settings.database_url
    config.attributes["jwt_secret"] = settings.jwt_secret  # the key of sealed secrets (0009)
    command.upgrade(config, "head")


async def seed(settings: Settings) -> int:
    """Insert the demo pets into the shared pool, only when it has no pets yet."""
    from models.base import utcnow

    db = Database(settings.database_url)

    def work(session: Session) -> int:
        if session.scalar(select(func.count()).select_from(Pet)):
            return 0
        for data in DEMO_PETS:
            now = utcnow()
            fields = {k: getattr(data, k) for k in data.__dataclass_fields__}
            session.add(Pet(photos=[], version=1, created_at=now, updated_at=now, **fields))
        return len(DEMO_PETS)

    try:
        return await db.run(SHARED_POOL, work, write=True)
    finally:
        await db.dispose()


async def ensure_admin_account(settings: Settings) -> str:
    """The startup check on its own: AdminNameTaken when the name is a non-admin's account."""
    if not (settings.admin_username and settings.admin_password):
        return "PETSTORE_ADMIN_USERNAME/PETSTORE_ADMIN_PASSWORD not set; no admin account"
    db = Database(settings.database_url)
    try:
        user = await ensure_admin(
            db,
            SHARED_POOL,
            settings.admin_username,
            settings.admin_password,
            settings.admin_email,
            promote_existing=settings.admin_promote_existing,
        )
    finally:
        await db.dispose()
    return f"admin account '{user.username}' ensured"


async def audit_verify(settings: Settings, tenant: str | None = None) -> int:
    """Print the chain check's progress and outcome; the exit status (0 OK, 1 broken)."""
    db = Database(settings.database_url)
    checked = 0

    def progress(rows: int) -> None:
        nonlocal checked
        checked += rows
        if checked % 10_000 < rows:
            print(f"... {checked} rows checked", file=sys.stderr, flush=True)

    try:
        report = await check_chains(db, tenant, progress)
    finally:
        await db.dispose()
    if report.broken is not None:
        print(f"BROKEN after {report.rows} good rows: {report.broken}")
        return 1
    print(f"OK: {report.rows} audit rows in {report.tenants} tenant chains verified")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["migrate", "seed", "ensure-admin", "audit-verify"])
    parser.add_argument("--tenant", help="audit-verify: only this tenant's chain")
    args = parser.parse_args()
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        sys.exit(f"error: {exc}")
    make_private_dir(settings.var_dir)
    if args.command == "migrate":
        migrate(settings)
    elif args.command == "audit-verify":
        sys.exit(asyncio.run(audit_verify(settings, args.tenant)))
    elif args.command == "ensure-admin":
        try:
            print(asyncio.run(ensure_admin_account(settings)))
        except AdminNameTaken as exc:
            sys.exit(f"error: {exc}")
    else:
        count = asyncio.run(seed(settings))
        print(f"seeded {count} demo pets" if count else "database already has pets; not seeding")


if __name__ == "__main__":
    main()
