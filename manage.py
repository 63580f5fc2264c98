"""Operator commands: ``python manage.py migrate|seed|ensure-admin|audit-verify|rotate-keys``.

``seed`` inserts the demo pets into an empty shared pool. ``seed --pets N`` instead adds N
synthetic pets (varied species, statuses, ages, prices and names, each checked by the domain's
PetData rules) to the shared pool or ``--tenant``, ``--batch-size`` rows per transaction with a
progress bar on a terminal (a line per batch otherwise); every run adds N more.

``audit-verify`` walks every tenant's audit chain (services.admin.audit.verify) and prints OK
with the number of rows checked, or the first broken link (tenant, seq, id, what is wrong) and
exits 1.

``rotate-keys`` makes a new current token-signing key in var/jwt-keys/ (auth/keys.py): running
servers sign with it at once (every worker lists the directory before signing), and the previous
keys stay published at /.well-known/jwks.json and accepted until every token they signed has
expired (then pruned). ``--drop-previous`` removes the previous keys at once, ending every token
they signed (a leaked key). Refused (exit 1) when the keys come from configuration
(PETSTORE_JWT_PRIVATE_KEY or PETSTORE_JWT_PRIVATE_KEY_FILE).

``ensure-admin`` creates the PETSTORE_ADMIN_USERNAME account (or sets the existing admin's
password), as the server does at startup; it exits non-zero, naming the account, when that name
belongs to an existing non-admin account (unless PETSTORE_ADMIN_PROMOTE_EXISTING=1)."""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.orm import Session

from auth.keys import key_ring
from models import Pet
from models.base import SHARED_POOL, utcnow, uuid7
from models.database import Database
from models.enums import Currency, Gender, PetSize, PetStatus, Species
from services.accounts.users import AdminNameTaken, ensure_admin
from services.admin.audit import check_chains
from services.catalogue.pets import MEDICAL_FLAGS, PetData
from services.oauth.clients import DEVICE_CODE, ClientData, RegistrationError
from services.oauth.service import create_client
from services.shared.audit import system_actor
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


NAMES = (
    "Bella", "Max", "Luna", "Charlie", "Lucy", "Cooper", "Daisy", "Milo", "Bailey", "Rocky",
    "Sadie", "Tucker", "Molly", "Bear", "Maggie", "Leo", "Sophie", "Oliver", "Chloe", "Toby",
    "Stella", "Jack", "Penny", "Duke", "Zoe", "Buster", "Lily", "Riley", "Coco", "Finn", "Rosie",
    "Ziggy", "Pepper", "Oreo", "Mochi", "Nala", "Simba", "Biscuit", "Peanut", "Clover", "Hazel",
    "Pip", "Juniper", "Sunny", "Ginger",
)  # fmt: skip
BREEDS = {
    Species.DOG: ("Labrador Retriever", "Beagle", "German Shepherd", "Poodle", "Mixed"),
    Species.CAT: ("Domestic Shorthair", "Siamese", "Maine Coon", "Ragdoll", "Bengal"),
    Species.RABBIT: ("Holland Lop", "Netherland Dwarf", "Rex", "Lionhead"),
    Species.BIRD: ("Budgerigar", "Cockatiel", "Canary", "Lovebird"),
    Species.REPTILE: ("Bearded Dragon", "Leopard Gecko", "Corn Snake", "Ball Python"),
    Species.OTHER: ("Guinea Pig", "Hamster", "Ferret", "Chinchilla"),
}
COLORS = ("Black", "White", "Brown", "Grey", "Golden", "Tabby", "Spotted", "Cream", "Green")
STATUS_WEIGHTS = {  # a shelter mostly lists pets that can be adopted
    PetStatus.AVAILABLE: 70,
    PetStatus.PENDING: 10,
    PetStatus.ADOPTED: 15,
    PetStatus.NOT_AVAILABLE: 5,
}
SPECIES_WEIGHTS = {
    Species.DOG: 35,
    Species.CAT: 30,
    Species.RABBIT: 10,
    Species.BIRD: 10,
    Species.REPTILE: 8,
    Species.OTHER: 7,
}


def synthetic_pet(rng: random.Random, number: int) -> PetData:
    """One made-up pet, valid by construction (PetData checks it again)."""
    species = rng.choices(list(SPECIES_WEIGHTS), list(SPECIES_WEIGHTS.values()))[0]
    medical = {flag: rng.random() < 0.7 for flag in MEDICAL_FLAGS} if rng.random() < 0.6 else None
    return PetData(
        name=f"{rng.choice(NAMES)} {number}",
        species=species,
        age_months=rng.randint(1, 180),
        price=Decimal(rng.randint(500, 250_000)) / 100,
        status=rng.choices(list(STATUS_WEIGHTS), list(STATUS_WEIGHTS.values()))[0],
        currency=rng.choices(list(Currency), [80, 8, 6, 3, 3])[0],
        breed=rng.choice(BREEDS[species]),
        size=rng.choice(list(PetSize)),
        color=rng.choice(COLORS),
        gender=rng.choice(list(Gender)),
        good_with_kids=rng.choice((True, False, None)),
        good_with_pets=rng.choice((True, False, None)),
        description=f"Synthetic {species.lower()} number {number}, for load tests",
        medical_info=medical,
    )


def synthetic_rows(
    count: int, tenant: str, rng: random.Random, first: int = 1
) -> Iterator[dict[str, object]]:
    """Rows for a Core insert into ``pets``, ids and timestamps as the ORM model makes them."""
    for number in range(first, first + count):
        data = synthetic_pet(rng, number)
        now = utcnow()
        yield {
            **{k: getattr(data, k) for k in data.__dataclass_fields__},
            "id": uuid7(),
            "tenant_id": tenant,
            "photos": [],
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }


def seed_pets(
    settings: Settings,
    count: int,
    tenant: str = SHARED_POOL,
    batch_size: int = 5000,
    progress: Callable[[int], None] = lambda done: None,
    rng: random.Random | None = None,
) -> int:
    """Add ``count`` synthetic pets, ``batch_size`` per transaction (one executemany insert
    each); ``progress`` gets the running total after each batch. Returns ``count``."""
    rng = rng or random.Random()  # noqa: S311 - made-up data, not secrets
    engine = create_engine(settings.database_url, hide_parameters=True)
    done = 0
    try:
        while done < count:
            size = min(batch_size, count - done)
            rows = list(synthetic_rows(size, tenant, rng, first=done + 1))
            with engine.begin() as conn:
                conn.execute(insert(Pet), rows)  # Core executemany, no ORM objects
            done += size
            progress(done)
    finally:
        engine.dispose()
    return done


def seed_pets_reporting(settings: Settings, count: int, tenant: str, batch_size: int) -> int:
    """seed_pets with a rich progress bar on a terminal, else a plain line per batch."""
    if not sys.stderr.isatty():

        def line(done: int) -> None:
            print(f"... {done}/{count} pets inserted", file=sys.stderr, flush=True)

        return seed_pets(settings, count, tenant, batch_size, line)
    from rich.progress import Progress  # only on a terminal

    with Progress(transient=False) as bar:
        task = bar.add_task("Seeding pets", total=count)
        return seed_pets(
            settings, count, tenant, batch_size, lambda done: bar.update(task, completed=done)
        )


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


def rotate_keys(settings: Settings, drop_previous: bool = False) -> str:
    """Rotate the var/ key ring; what happened, in a line per key."""
    keys = key_ring(settings)
    new = keys.rotate(settings.token_ttl_seconds, drop_previous=drop_previous)
    lines = [f"new signing key {new.kid}"]
    lines += [f"still published and accepted: {key.kid}" for key in keys.published() if key != new]
    return "\n".join(lines)


async def create_oauth_client(settings: Settings, tenant: str, data: ClientData) -> str:
    """Register an OAuth client in ``tenant`` (audited as the system); the lines to print:
    its id, and a confidential client's secret (shown this once)."""
    db = Database(settings.database_url)
    try:
        registered = await create_client(db, system_actor(tenant), data)
    finally:
        await db.dispose()
    lines = [f"client_id: {registered.client.client_id}"]
    if registered.secret is not None:
        lines.append(f"client_secret: {registered.secret}  (shown once: store it now)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "command",
        choices=["migrate", "seed", "ensure-admin", "audit-verify", "rotate-keys", "create-client"],
    )
    parser.add_argument(
        "--drop-previous",
        action="store_true",
        help="rotate-keys: remove the previous keys at once (every token they signed ends)",
    )
    client = parser.add_argument_group("create-client (an OAuth client)")
    client.add_argument("--name", help="the client's name, shown on the consent page")
    client.add_argument("--redirect-uri", action="append", default=[], metavar="URI",
                        help="an exact redirect URI (repeat for several)")  # fmt: skip
    kind = client.add_mutually_exclusive_group()
    kind.add_argument("--public", action="store_true", help="no secret, PKCE (the default)")
    kind.add_argument("--confidential", action="store_true", help="a secret, shown once")
    client.add_argument("--scope", action="append", default=[],
                        help="an allowed scope (repeat, or space-separated)")  # fmt: skip
    client.add_argument("--grant-type", action="append", default=[],
                        help="authorization_code, refresh_token, device_code (repeat)")  # fmt: skip
    parser.add_argument(
        "--tenant", help="audit-verify: only this tenant's chain; seed --pets: this tenant's pets"
    )
    parser.add_argument(
        "--pets", type=int, metavar="N", help="seed: add N synthetic pets (instead of the demo)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=5000, help="seed --pets: rows per transaction"
    )
    args = parser.parse_args()
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        sys.exit(f"error: {exc}")
    make_private_dir(settings.var_dir)
    if args.pets is not None and (args.command != "seed" or args.pets < 1 or args.batch_size < 1):
        sys.exit("error: --pets N (N >= 1, --batch-size >= 1) goes with the seed command")
    if args.tenant is not None and len(args.tenant) > 36:
        sys.exit("error: --tenant: at most 36 characters")
    if args.command == "create-client":
        grants = [DEVICE_CODE if g == "device_code" else g for g in args.grant_type]
        try:
            data = ClientData(
                name=args.name or "",
                redirect_uris=tuple(args.redirect_uri),
                scope=" ".join(args.scope),
                grant_types=tuple(grants or ("authorization_code", "refresh_token")),
                token_endpoint_auth_method=("client_secret_basic" if args.confidential else "none"),
            )
        except RegistrationError as exc:
            sys.exit(f"error: {exc.detail}")
        print(asyncio.run(create_oauth_client(settings, args.tenant or SHARED_POOL, data)))
    elif args.command == "migrate":
        migrate(settings)
    elif args.command == "rotate-keys":
        try:
            print(rotate_keys(settings, args.drop_previous))
        except ConfigError as exc:
            sys.exit(f"error: {exc}")
    elif args.command == "audit-verify":
        sys.exit(asyncio.run(audit_verify(settings, args.tenant)))
    elif args.command == "ensure-admin":
        try:
            print(asyncio.run(ensure_admin_account(settings)))
        except AdminNameTaken as exc:
            sys.exit(f"error: {exc}")
    elif args.pets is not None:
        tenant = args.tenant or SHARED_POOL
        count = seed_pets_reporting(settings, args.pets, tenant, args.batch_size)
        print(f"seeded {count} synthetic pets into {tenant or 'the shared pool'}")
    else:
        count = asyncio.run(seed(settings))
        print(f"seeded {count} demo pets" if count else "database already has pets; not seeding")


if __name__ == "__main__":
    main()
