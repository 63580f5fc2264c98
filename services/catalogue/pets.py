"""Pet catalogue use cases.

Rules: anyone (in the tenant) may read; only principals with ``write:pets`` (shelter staff) may
create, replace or delete. Replacing honours an optimistic-concurrency version (If-Match)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.orm import Session

from models import ACTIVE_ORDER_STATUSES, Order, Pet
from models.base import utcnow
from models.database import Database
from models.enums import Currency, Gender, PetSize, PetStatus, Species
from services.shared.errors import (
    AuthenticationFailed,
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
)
from services.shared.pagination import DEFAULT_LIMIT, DEFAULT_PAGE, Page, PageRequest
from services.shared.principal import Principal
from services.shared.rules import Rules

SORT_COLUMNS = {
    "name": Pet.name,
    "ageMonths": Pet.age_months,
    "price": Pet.price,
    "createdAt": Pet.created_at,
    "updatedAt": Pet.updated_at,
}


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
        if self.sort not in SORT_COLUMNS:
            rules.fail("sort", f"unknown sort field {self.sort!r}", "enum")
        rules.done()
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


def _filters(query: PetQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    for column, values in (
        (Pet.species, query.species),
        (Pet.status, query.status),
        (Pet.size, query.size),
        (Pet.gender, query.gender),
    ):
        if values:
            conditions.append(column.in_(values))
    if query.good_with_kids is not None:
        conditions.append(Pet.good_with_kids.is_(query.good_with_kids))
    if query.good_with_pets is not None:
        conditions.append(Pet.good_with_pets.is_(query.good_with_pets))
    if query.min_age is not None:
        conditions.append(Pet.age_months >= query.min_age)
    if query.max_age is not None:
        conditions.append(Pet.age_months <= query.max_age)
    if query.min_price is not None:
        conditions.append(Pet.price >= query.min_price)
    if query.max_price is not None:
        conditions.append(Pet.price <= query.max_price)
    if query.name:
        conditions.append(func.lower(Pet.name).contains(query.name.lower(), autoescape=True))
    return conditions


async def list_pets(db: Database, tenant: str, query: PetQuery) -> Page[Pet]:
    """Filtered, sorted, paginated pets of one tenant (the query validated itself)."""
    paging = query.paging
    conditions = _filters(query)
    column = SORT_COLUMNS[query.sort]
    order = (column.desc(), Pet.id.desc()) if query.descending else (column.asc(), Pet.id.asc())

    def work(session: Session) -> Page[Pet]:
        total = session.scalar(select(func.count()).select_from(Pet).where(*conditions))
        rows = session.scalars(
            select(Pet)
            .where(*conditions)
            .order_by(*order)
            .offset(paging.offset)
            .limit(paging.limit)
        )
        return paging.of_rows(list(rows), total or 0)

    return await db.run(tenant, work)


def _has_active_order(session: Session, pet_id: uuid.UUID) -> bool:
    active = exists().where(Order.pet_id == pet_id, Order.status.in_(ACTIVE_ORDER_STATUSES))
    return bool(session.scalar(select(active)))


def load_pet(session: Session, pet_id: uuid.UUID, *, lock: bool = False) -> Pet:
    pet = session.get(Pet, pet_id, with_for_update=lock)
    if pet is None:
        raise NotFound("pet", pet_id)
    return pet


async def get_pet(db: Database, tenant: str, pet_id: uuid.UUID) -> Pet:
    """Raises NotFound."""
    return await db.run(tenant, lambda session: load_pet(session, pet_id))


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

    async def list(self, principal: Principal, query: PetQuery) -> Page[Pet]:
        return await list_pets(self.db, principal.tenant, query)

    async def get(self, principal: Principal, pet_id: uuid.UUID) -> Pet:
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
    ) -> dict[uuid.UUID, Pet]:
        """Pets by id, one statement for all (e.g. the pets of a page of orders)."""
        return await get_pets(self.db, principal.tenant, pet_ids)


async def get_pets(
    db: Database, tenant: str, pet_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, Pet]:
    """Many pets of one tenant by id in one statement (batch loading); missing ids are absent."""
    if not pet_ids:
        return {}

    def work(session: Session) -> dict[uuid.UUID, Pet]:
        return {p.id: p for p in session.scalars(select(Pet).where(Pet.id.in_(set(pet_ids))))}

    return await db.run(tenant, work)
