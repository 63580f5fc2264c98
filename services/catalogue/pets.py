"""Pet catalogue use cases.

Rules: anyone (in the tenant) may read; only principals with ``write:pets`` (shelter staff) may
create, replace or delete. Replacing honours an optimistic-concurrency version (If-Match)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import exists, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from models import ACTIVE_ORDER_STATUSES, Order, Pet
from models.base import utcnow
from models.database import Database
from models.enums import Currency, Gender, PetSize, PetStatus, Species
from services.catalogue import reads
from services.catalogue.reads import Keyset, PetRecord
from services.shared.errors import (
    AuthenticationFailed,
    Conflict,
    Forbidden,
    InvalidCursor,
    NotFound,
    PreconditionFailed,
)
from services.shared.pagination import DEFAULT_LIMIT, DEFAULT_PAGE, Page, PageRequest
from services.shared.principal import Principal
from services.shared.rules import Rules

MEDICAL_FLAGS = ("spayedNeutered", "vaccinated", "microchipped", "specialNeeds")


def _set(obj: object, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


@dataclass(frozen=True)
class PetData:
    """The writable fields of a pet (create and full replace). Validates itself: a bad value
    raises InvalidInput naming every bad field (wire names)."""

    name: str
    species: str
    age_months: int
    price: Decimal
    status: str = PetStatus.AVAILABLE
    currency: str = Currency.USD
    breed: str | None = None
    size: str | None = None
    color: str | None = None
    gender: str | None = None
    good_with_kids: bool | None = None
    good_with_pets: bool | None = None
    description: str | None = None
    medical_info: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        rules = Rules()
        rules.text("name", self.name, min_len=1, max_len=50)
        _set(self, "species", rules.choice("species", self.species, Species))
        rules.integer("ageMonths", self.age_months, 0, 600)
        if rules.money("price", self.price) and isinstance(self.price, str):
            _set(self, "price", Decimal(self.price))
        _set(self, "status", rules.choice("status", self.status, PetStatus))
        _set(self, "currency", rules.choice("currency", self.currency, Currency))
        rules.text("breed", self.breed, max_len=100, optional=True)
        _set(self, "size", rules.choice("size", self.size, PetSize, optional=True))
        rules.text("color", self.color, max_len=50, optional=True)
        _set(self, "gender", rules.choice("gender", self.gender, Gender, optional=True))
        rules.boolean("goodWithKids", self.good_with_kids)
        rules.boolean("goodWithPets", self.good_with_pets)
        rules.text("description", self.description, max_len=2000, optional=True)
        medical = rules.object("medicalInfo", self.medical_info, (*MEDICAL_FLAGS, "notes"))
        if medical is not None:
            for flag in MEDICAL_FLAGS:
                rules.boolean(f"medicalInfo.{flag}", medical.get(flag))
            rules.text("medicalInfo.notes", medical.get("notes"), max_len=1000, optional=True)
        rules.done()


@dataclass(frozen=True)
class PetQuery:
    """List Pets / Search Pets: filters, sort and page. Validates itself like PetData; the page
    is clamped by PageRequest."""

    page: int = DEFAULT_PAGE
    limit: int = DEFAULT_LIMIT
    species: tuple[str, ...] = ()
    status: tuple[str, ...] = ()
    size: tuple[str, ...] = ()
    gender: tuple[str, ...] = ()
    good_with_kids: bool | None = None
    good_with_pets: bool | None = None
    min_age: int | None = None
    max_age: int | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    name: str | None = None
    sort: str = "createdAt"
    descending: bool = True
    after: Keyset | None = None
    """Keyset pagination: start after this row (a cursor); ``page`` is then the cursor's."""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        rules = Rules()
        paging = PageRequest(self.page, self.limit)
        _set(self, "page", paging.page)
        _set(self, "limit", paging.limit)
        _set(self, "species", rules.choices("species", self.species, Species))
        _set(self, "status", rules.choices("status", self.status, PetStatus))
        _set(self, "size", rules.choices("size", self.size, PetSize))
        _set(self, "gender", rules.choices("gender", self.gender, Gender))
        rules.boolean("goodWithKids", self.good_with_kids)
        rules.boolean("goodWithPets", self.good_with_pets)
        ages = rules.integer("minAge", self.min_age, 0, 600, optional=True)
        ages &= rules.integer("maxAge", self.max_age, 0, 600, optional=True)
        prices = rules.money("minPrice", self.min_price, optional=True)
        prices &= rules.money("maxPrice", self.max_price, optional=True)
        rules.text("name", self.name, min_len=1, max_len=50, optional=True)
        young, old = self.min_age, self.max_age
        if ages and young is not None and old is not None and young > old:
            rules.fail("minAge", "must not be greater than maxAge", "range")
        low, high = self.min_price, self.max_price
        if prices and low is not None and high is not None and Decimal(low) > Decimal(high):
            rules.fail("minPrice", "must not be greater than maxPrice", "range")
        if self.sort not in reads.SORT_KEYS:
            rules.fail("sort", f"unknown sort field {self.sort!r}", "enum")
        rules.done()
        after = self.after
        if after is not None and (after.sort, after.descending) != (self.sort, self.descending):
            raise InvalidCursor("the cursor was made for another sort; drop it or the sort")
        for name in ("min_price", "max_price"):
            if isinstance(getattr(self, name), str):
                _set(self, name, Decimal(getattr(self, name)))

    @property
    def paging(self) -> PageRequest:
        return PageRequest(self.page, self.limit)


def require_writer(principal: Principal) -> None:
    if not principal.is_authenticated:
        raise AuthenticationFailed("Managing pets requires a bearer token.")
    if "write:pets" not in principal.scopes:
        raise Forbidden("Managing pets requires the write:pets scope (shelter staff).")


async def list_pets(db: Database, tenant: str, query: PetQuery) -> Page[PetRecord]:
    """Filtered, sorted pets of one tenant (the query validated itself), by page (OFFSET) or
    after a keyset position (``query.after``); the page says where the next one starts. One
    read unit on the lean path (services.catalogue.reads); the total from ``pet_counts`` when
    the filters are only species and status."""
    values = reads.filter_values(query)
    after, limit = query.after, query.limit
    page = query.page if after is None else after.page
    offset = query.paging.offset if after is None else 0

    def work(conn: Connection, tenant: str) -> Page[PetRecord]:
        rows = reads.list_pets(
            conn, tenant, values, query.sort, query.descending, offset, limit + 1, after
        )
        total = reads.count_pets(conn, tenant, values)
        following = None
        if len(rows) > limit:
            rows = rows[:limit]
            last = rows[-1]
            following = reads.Keyset(
                query.sort, query.descending, last.sort_value(query.sort), last.id, page + 1
            )
        return Page(rows, max(total, (page - 1) * limit + len(rows)), page, limit, following)

    return await db.read(tenant, work)


def _has_active_order(session: Session, pet_id: uuid.UUID) -> bool:
    active = exists().where(Order.pet_id == pet_id, Order.status.in_(ACTIVE_ORDER_STATUSES))
    return bool(session.scalar(select(active)))


def load_pet(session: Session, pet_id: uuid.UUID, *, lock: bool = False) -> Pet:
    pet = session.get(Pet, pet_id, with_for_update=lock)
    if pet is None:
        raise NotFound("pet", pet_id)
    return pet


async def get_pet(db: Database, tenant: str, pet_id: uuid.UUID) -> PetRecord:
    """Raises NotFound. A read unit on the lean path (services.catalogue.reads)."""
    pet = await db.read(tenant, lambda conn, tenant: reads.get_pet(conn, tenant, pet_id))
    if pet is None:
        raise NotFound("pet", pet_id)
    return pet


def _apply(pet: Pet, data: PetData) -> None:
    pet.name = data.name
    pet.species = data.species
    pet.age_months = data.age_months
    pet.price = data.price
    pet.currency = data.currency
    pet.status = data.status
    pet.breed = data.breed
    pet.size = data.size
    pet.color = data.color
    pet.gender = data.gender
    pet.good_with_kids = data.good_with_kids
    pet.good_with_pets = data.good_with_pets
    pet.description = data.description
    pet.medical_info = data.medical_info


async def create_pet(db: Database, principal: Principal, data: PetData) -> Pet:
    """Raises Forbidden without write:pets."""
    require_writer(principal)
    pet = Pet(photos=[], version=1)
    _apply(pet, data)
    now = utcnow()
    pet.created_at = pet.updated_at = now
    await db.run(principal.tenant, lambda session: session.add(pet), write=True)
    return pet


async def replace_pet(
    db: Database,
    principal: Principal,
    pet_id: uuid.UUID,
    data: PetData,
    if_match: frozenset[int] | None = None,
) -> Pet:
    """Full replacement of the writable fields. ``if_match`` is the set of versions the caller
    accepts (None: unconditional). Raises Forbidden, NotFound, PreconditionFailed."""
    require_writer(principal)

    def work(session: Session) -> Pet:
        pet = load_pet(session, pet_id, lock=True)
        if if_match is not None and pet.version not in if_match:
            raise PreconditionFailed(
                "The pet was changed since you read it; fetch it again and retry with its ETag."
            )
        if data.status != pet.status and _has_active_order(session, pet_id):
            raise Conflict(
                f"The pet is reserved by an active order; its status ({pet.status}) follows "
                "the order. Cancel or fulfil the order instead.",
                field="status",
                code="reserved",
            )
        _apply(pet, data)
        pet.version += 1
        pet.updated_at = utcnow()
        return pet

    return await db.run(principal.tenant, work, write=True)


class PetFiles(Protocol):
    """Where a pet's files live (implemented by services.media.images.ImageService)."""

    async def delete_pet_files(self, pet_id: uuid.UUID) -> None: ...


async def delete_pet(
    db: Database, principal: Principal, pet_id: uuid.UUID, files: PetFiles | None = None
) -> None:
    """Raises Forbidden, NotFound, Conflict (the pet has orders). With ``files``, the pet's
    image files go too (after the commit: a crash in between leaves unreachable files, never a
    pet without its images)."""
    require_writer(principal)

    def work(session: Session) -> None:
        pet = load_pet(session, pet_id)
        if session.scalar(select(exists().where(Order.pet_id == pet_id))):
            raise Conflict(
                "The pet has orders and is kept for their history; "
                "set its status to NOT_AVAILABLE instead.",
                field="id",
                code="has_orders",
            )
        session.delete(pet)

    await db.run(principal.tenant, work, write=True)
    if files is not None:
        await files.delete_pet_files(pet_id)


class PetService:
    """The catalogue's use cases, built once with their dependencies (app.build_container)."""

    def __init__(self, db: Database, files: PetFiles | None = None) -> None:
        self.db = db
        self.files = files

    async def list(self, principal: Principal, query: PetQuery) -> Page[PetRecord]:
        return await list_pets(self.db, principal.tenant, query)

    async def get(self, principal: Principal, pet_id: uuid.UUID) -> PetRecord:
        return await get_pet(self.db, principal.tenant, pet_id)

    async def create(self, principal: Principal, data: PetData) -> Pet:
        return await create_pet(self.db, principal, data)

    async def replace(
        self,
        principal: Principal,
        pet_id: uuid.UUID,
        data: PetData,
        if_match: frozenset[int] | None = None,
    ) -> Pet:
        return await replace_pet(self.db, principal, pet_id, data, if_match)

    async def delete(self, principal: Principal, pet_id: uuid.UUID) -> None:
        await delete_pet(self.db, principal, pet_id, self.files)

    async def get_many(
        self, principal: Principal, pet_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, PetRecord]:
        """Pets by id, one statement for all (e.g. the pets of a page of orders)."""
        return await get_pets(self.db, principal.tenant, pet_ids)


async def get_pets(
    db: Database, tenant: str, pet_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, PetRecord]:
    """Many pets of one tenant by id in one statement (batch loading); missing ids are absent."""
    if not pet_ids:
        return {}
    ids = list(set(pet_ids))
    return await db.read(tenant, lambda conn, tenant: reads.get_pets(conn, tenant, ids))
