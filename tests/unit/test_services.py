"""Services on the real database, without HTTP: business rules and the errors they raise."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import select

from auth.keys import KeyRing, SigningKey, new_private_key
from auth.tokens import TokenService
from infra.counters import MemoryCounterStore
from models import Pet, User
from models.database import Database
from models.tenancy import TenantMissingError
from services.accounts import users
from services.accounts.roles import RoleLookup
from services.catalogue import pets
from services.shared.errors import (
    AuthenticationFailed,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    TooManyAttempts,
)
from services.shared.principal import ROLE_SCOPES, Principal
from services.shared.throttle import MAX_IN_LINE, FailureThrottle
from settings import Settings
from tests.conftest import run_db

DATA = pets.PetData(name="Rex", species="DOG", age_months=12, price=Decimal("10.00"))


def new_user(username: str, email: str) -> users.NewUser:
    return users.NewUser(
        username=username,
        email=email,
        first_name="Test",
        last_name="User",
        password="password-123",
    )


def staff(tenant: str) -> Principal:
    return Principal(uuid.uuid4(), "admin", ROLE_SCOPES["admin"], tenant)


def member(tenant: str, subject: uuid.UUID | None = None) -> Principal:
    return Principal(subject or uuid.uuid4(), "user", ROLE_SCOPES["user"], tenant)


@pytest.fixture
def tenant() -> str:
    return str(uuid.uuid4())


def test_create_requires_write_pets(settings: Settings, tenant: str) -> None:
    async def go(db: Database) -> None:
        with pytest.raises(Forbidden):
            await pets.create_pet(db, member(tenant), DATA)
        pet = await pets.create_pet(db, staff(tenant), DATA)
        assert pet.tenant_id == tenant
        assert pet.version == 1

    run_db(settings, go)


def test_replace_checks_version_and_bumps_it(settings: Settings, tenant: str) -> None:
    async def go(db: Database) -> None:
        pet = await pets.create_pet(db, staff(tenant), DATA)
        with pytest.raises(PreconditionFailed):
            await pets.replace_pet(db, staff(tenant), pet.id, DATA, frozenset({2}))
        updated = await pets.replace_pet(db, staff(tenant), pet.id, DATA, frozenset({1}))
        assert updated.version == 2
        with pytest.raises(NotFound):
            await pets.replace_pet(db, staff(tenant), uuid.uuid4(), DATA)

    run_db(settings, go)


def test_list_rejects_inverted_ranges(settings: Settings, tenant: str) -> None:
    async def go(db: Database) -> None:
        with pytest.raises(InvalidInput) as info:
            await pets.list_pets(
                db, tenant, pets.PetQuery(min_price=Decimal(5), max_price=Decimal(1))
            )
        assert [e.field for e in info.value.errors] == ["minPrice"]

    run_db(settings, go)


def test_tenant_filter_applies_to_get_and_list(settings: Settings) -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())

    async def go(db: Database) -> None:
        pet = await pets.create_pet(db, staff(a), DATA)
        with pytest.raises(NotFound):
            await pets.get_pet(db, b, pet.id)
        assert (await pets.list_pets(db, b, pets.PetQuery())).total == 0
        # even a raw ORM query cannot see it
        rows = await db.run(b, lambda s: s.scalars(select(Pet).where(Pet.id == pet.id)).all())
        assert rows == []

    run_db(settings, go)


def test_session_without_tenant_refuses_queries(settings: Settings) -> None:
    async def go(db: Database) -> None:
        with db._readers() as session, pytest.raises(TenantMissingError):
            session.scalars(select(Pet))

    run_db(settings, go)


def test_users_duplicate_and_ownership(settings: Settings, tenant: str) -> None:
    new = new_user("eve", "eve@example.com")

    async def go(db: Database) -> None:
        eve = await users.register(db, tenant, new)
        assert eve.password_hash.startswith("$argon2id$")
        with pytest.raises(Conflict):
            await users.register(db, tenant, new)
        with pytest.raises(NotFound):
            await users.get_user(db, member(tenant), eve.id)
        assert (await users.get_user(db, member(tenant, eve.id), eve.id)).id == eve.id
        with pytest.raises(NotFound):
            await users.delete_user(db, member(tenant), eve.id)

    run_db(settings, go)


def test_get_user_decides_whole_account_or_public_profile(settings: Settings, tenant: str) -> None:
    """The service, not an adapter, decides what of an account a caller sees; registering signs
    the account in with the injected issuer, as a login does."""
    tokens = TokenService(KeyRing(None, [SigningKey.of(new_private_key())]), "petstore", 60)
    throttle = FailureThrottle(MemoryCounterStore(), 5, 60)

    async def go(db: Database) -> None:
        service = users.UserService(db, throttle, RoleLookup(db, 5), tokens)
        signed_in = await service.register(member(tenant), new_user("fay", "fay@example.com"))
        fay = signed_in.user
        claims = tokens.verify(signed_in.token.token)
        assert claims is not None
        assert (claims["sub"], claims["tid"], claims["ver"]) == (str(fay.id), tenant, 0)
        assert signed_in.token.scope == " ".join(sorted(ROLE_SCOPES["user"]))
        seen = await service.get(member(tenant), fay.id)
        assert seen == users.PublicProfile(
            fay.id, "fay", fay.first_name, fay.last_name, fay.created_at
        )
        own = await service.get(member(tenant, fay.id), fay.id)
        assert isinstance(own, User)
        assert own.email == "fay@example.com"
        whole = await service.get(staff(tenant), fay.id)
        assert isinstance(whole, User)
        assert whole.email == "fay@example.com"
        with pytest.raises(NotFound):
            await service.get(member(str(uuid.uuid4())), fay.id)  # another tenant
        with pytest.raises(NotFound):
            await service.get(member(tenant), uuid.uuid4())

    run_db(settings, go)


def test_authenticate_throttles_per_username_and_per_client(
    settings: Settings, tenant: str
) -> None:
    new = new_user("mallory", "m@example.com")

    async def go(db: Database) -> None:
        throttle = FailureThrottle(MemoryCounterStore(), max_failures=2, window_seconds=60)
        await users.register(db, tenant, new)
        for _ in range(2):
            with pytest.raises(AuthenticationFailed):
                await users.authenticate(db, tenant, "mallory", "wrong", throttle, "10.0.0.9")
        with pytest.raises(TooManyAttempts):
            await users.authenticate(db, tenant, "mallory", "password-123", throttle, "10.0.0.9")
        # another username from the same client is not yet blocked (client limit is 10x)
        with pytest.raises(AuthenticationFailed):
            await users.authenticate(db, tenant, "someone", "wrong", throttle, "10.0.0.9")
        # and the user, from another address, is not locked out
        ok = await users.authenticate(db, tenant, "mallory", "password-123", throttle, "10.0.0.1")
        assert ok.username == "mallory"

    run_db(settings, go)


class Sleeps:
    """The throttle's sleep: records each delay, and how many sleeps overlapped at most."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.active = 0
        self.most_at_once = 0

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self.active += 1
        self.most_at_once = max(self.most_at_once, self.active)
        try:
            await asyncio.sleep(0.005)
        finally:
            self.active -= 1


def test_a_username_failing_from_many_addresses_is_slowed_never_locked(
    settings: Settings, tenant: str
) -> None:
    """Past the limit, each attempt for the username waits (in ``authenticate``) a delay that
    doubles up to the cap; the right password from yet another address still succeeds, after
    its delay."""
    new = new_user("walter", "w@example.com")
    sleeps = Sleeps()
    throttle = FailureThrottle(
        MemoryCounterStore(), max_failures=2, window_seconds=60, backoff_base=0.01,
        backoff_max=0.04, sleep=sleeps,
    )  # fmt: skip

    async def go(db: Database) -> None:
        await users.register(db, tenant, new)
        for i in range(6):  # 6 addresses, one guess each: none reaches its own limit
            with pytest.raises(AuthenticationFailed):
                await users.authenticate(db, tenant, "walter", "wrong", throttle, f"10.1.0.{i}")
        assert sleeps.delays == [0.01, 0.02, 0.04, 0.04]  # the 3rd to the 6th attempt
        assert await throttle.backoff("probe") == 0  # other keys are unaffected
        ok = await users.authenticate(db, tenant, "walter", "password-123", throttle, "10.2.0.1")
        assert ok.username == "walter"
        assert sleeps.delays[-1] == 0.04

    run_db(settings, go)


def test_parallel_attempts_on_a_username_in_backoff_take_turns(
    settings: Settings, tenant: str
) -> None:
    """Guesses sent in parallel from several addresses wait their delays one after another (per
    worker), not all at once, up to the line's length."""
    new = new_user("wanda", "wa@example.com")
    sleeps = Sleeps()
    throttle = FailureThrottle(
        MemoryCounterStore(), max_failures=2, window_seconds=60, backoff_base=0.01,
        backoff_max=0.04, sleep=sleeps,
    )  # fmt: skip
    attempts = 2 + MAX_IN_LINE  # two within the limit, then a full line

    async def go(db: Database) -> None:
        await users.register(db, tenant, new)
        results = await asyncio.gather(
            *[
                users.authenticate(db, tenant, "wanda", "wrong", throttle, f"10.3.0.{i}")
                for i in range(attempts)
            ],
            return_exceptions=True,
        )
        assert all(isinstance(r, AuthenticationFailed) for r in results)
        assert sorted(sleeps.delays) == [0.01, 0.02]
        assert sleeps.most_at_once == 1
        assert throttle._lines == {}  # nothing is kept once the turns are over

    run_db(settings, go)


def test_a_flood_on_a_username_never_queues_the_real_user_behind_it() -> None:
    """With the line full (the attempt holding the key stuck in its delay, the next waiting for
    it), a further attempt on the same username does not wait for them: it waits its own delay
    and goes on (a flood of guesses cannot lock the real user out by queueing it behind them)."""
    released = asyncio.Event()

    async def stuck_first(delay: float) -> None:
        if stuck_first.calls == 0:  # type: ignore[attr-defined]  # the one holding the key
            stuck_first.calls += 1  # type: ignore[attr-defined]
            await released.wait()

    stuck_first.calls = 0  # type: ignore[attr-defined]
    throttle = FailureThrottle(
        MemoryCounterStore(), max_failures=1, window_seconds=60, backoff_base=0.01,
        backoff_max=0.04, sleep=stuck_first,
    )  # fmt: skip

    async def attempt() -> float:
        async with throttle.slowed("user:wanda") as delay:
            return delay

    async def go() -> None:
        assert await attempt() == 0.0  # within the limit
        line = [asyncio.create_task(attempt()) for _ in range(MAX_IN_LINE)]
        for _ in range(5):
            await asyncio.sleep(0)  # the line forms: one holds the key in its delay
        assert throttle._lines["user:wanda"][1] == MAX_IN_LINE
        # the real user's attempt finishes while the line is still stuck
        assert await asyncio.wait_for(attempt(), timeout=5) > 0
        released.set()
        await asyncio.gather(*line)
        assert throttle._lines == {}

    asyncio.run(go())


def test_concurrent_conditional_updates_one_wins(settings: Settings, tenant: str) -> None:
    """Two writers holding the same ETag race; the row lock / BEGIN IMMEDIATE lets one win."""

    async def go(db: Database) -> None:
        pet = await pets.create_pet(db, staff(tenant), DATA)
        results = await asyncio.gather(
            *[pets.replace_pet(db, staff(tenant), pet.id, DATA, frozenset({1})) for _ in range(5)],
            return_exceptions=True,
        )
        assert sum(not isinstance(r, Exception) for r in results) == 1
        assert all(isinstance(r, PreconditionFailed) for r in results if isinstance(r, Exception))
        assert (await pets.get_pet(db, tenant, pet.id)).version == 2

    run_db(settings, go)


def test_parallel_guesses_are_all_counted(settings: Settings, tenant: str) -> None:
    """The attempt is counted before the slow password check: 12 parallel wrong guesses against
    a limit of 3 get at most 3 real checks."""
    new = new_user("trent", "t@example.com")

    async def go(db: Database) -> None:
        throttle = FailureThrottle(MemoryCounterStore(), max_failures=3, window_seconds=60)
        await users.register(db, tenant, new)
        results = await asyncio.gather(
            *[
                users.authenticate(db, tenant, "trent", f"guess-{i}", throttle, "10.0.0.7")
                for i in range(12)
            ],
            return_exceptions=True,
        )
        assert sum(isinstance(r, AuthenticationFailed) for r in results) == 3
        assert sum(isinstance(r, TooManyAttempts) for r in results) == 9

    run_db(settings, go)


def test_database_refuses_usernames_differing_only_in_case(settings: Settings, tenant: str) -> None:
    """Registration checks case-insensitively; the unique index closes the race behind it."""
    from sqlalchemy.exc import IntegrityError

    from models import User
    from models.base import utcnow

    def row(name: str) -> User:
        now = utcnow()
        return User(
            username=name,
            email=f"{name}@example.com".lower().replace("@", f"{name}@"),
            first_name="A",
            last_name="B",
            password_hash="x",
            role="user",
            version=1,
            created_at=now,
            updated_at=now,
        )

    async def go(db: Database) -> None:
        await db.run(tenant, lambda s: s.add(row("Alice")), write=True)
        with pytest.raises(IntegrityError):
            await db.run(tenant, lambda s: s.add(row("alice")), write=True)

    run_db(settings, go)


def test_ensure_admin_refuses_to_promote_an_existing_account_in_any_case(
    settings: Settings, tenant: str
) -> None:
    """Whoever registers the admin's name first (any case) does not become staff: startup
    refuses, naming the account, and leaves it as it was."""
    new = new_user("Boss", "boss@example.com")

    async def go(db: Database) -> None:
        squatter = await users.register(db, tenant, new)
        with pytest.raises(users.AdminNameTaken) as refused:
            await users.ensure_admin(db, tenant, "boss", "admin-password-9")
        assert "'Boss'" in str(refused.value)
        assert str(squatter.id) in str(refused.value)
        assert "PETSTORE_ADMIN_PROMOTE_EXISTING" in str(refused.value)
        again = await users.get_user(db, staff(tenant), squatter.id)
        assert again.role == "user"
        throttle = FailureThrottle(MemoryCounterStore(), max_failures=5, window_seconds=60)
        with pytest.raises(AuthenticationFailed):  # the password was not replaced either
            await users.authenticate(db, tenant, "boss", "admin-password-9", throttle, "c")

    run_db(settings, go)


def test_ensure_admin_promotes_an_existing_account_only_when_told(
    settings: Settings, tenant: str
) -> None:
    new = new_user("Chief", "chief@example.com")

    async def go(db: Database) -> None:
        account = await users.register(db, tenant, new)
        admin = await users.ensure_admin(
            db, tenant, "chief", "admin-password-9", promote_existing=True
        )
        assert admin.id == account.id
        assert admin.role == "admin"
        assert admin.token_version == account.token_version + 1  # earlier tokens end
        throttle = FailureThrottle(MemoryCounterStore(), max_failures=5, window_seconds=60)
        logged_in = await users.authenticate(db, tenant, "chief", "admin-password-9", throttle, "c")
        assert logged_in.id == account.id
        # an existing admin (matched in any case) is kept, without the opt-in; the same
        # password keeps its tokens, a new one ends them
        kept = await users.ensure_admin(db, tenant, "CHIEF", "admin-password-9")
        assert kept.id == account.id
        assert kept.token_version == admin.token_version
        changed = await users.ensure_admin(db, tenant, "CHIEF", "admin-password-10")
        assert changed.id == account.id
        assert changed.token_version == admin.token_version + 1

    run_db(settings, go)
