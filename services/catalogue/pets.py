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
from services.shared.errors import (
    AuthenticationFailed,
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionFailed,
)
from services.shared.pagination import MAX_PAGE_SIZE, Page
from services.shared.principal import Principal

SORT_COLUMNS = {
    "name": Pet.name,
    "ageMonths": Pet.age_months,
    "price": Pet.price,
    "createdAt": Pet.created_at,
    "updatedAt": Pet.updated_at,
}


@dataclass(frozen=True)
class PetData:
    """The writable fields of a pet (create and full replace)."""

    name: str
    species: str
    age_months: int
    price: Decimal
    status: str = "AVAILABLE"
    currency: str = "USD"
    breed: str | None = None
    size: str | None = None
    color: str | None = None
    gender: str | None = None
    good_with_kids: bool | None = None
    good_with_pets: bool | None = None
    description: str | None = None
    medical_info: dict[str, Any] | None = None


@dataclass(frozen=True)
class PetQuery:
    page: int = 1
    limit: int = 20
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


def require_writer(principal: Principal) -> None:
    if not principal.is_authenticated:
        raise AuthenticationFailed("Managing pets requires a bearer token.")
    if "write:pets" not in principal.scopes:
        raise Forbidden("Managing pets requires the write:pets scope (shelter staff).")


def _check_query(query: PetQuery) -> None:
    errors = []
    if query.min_age is not None and query.max_age is not None and query.min_age > query.max_age:
        errors.append(FieldError("minAge", "must not be greater than maxAge", "range"))
    if (
        query.min_price is not None
        and query.max_price is not None
        and query.min_price > query.max_price
    ):
        errors.append(FieldError("minPrice", "must not be greater than maxPrice", "range"))
    if query.sort not in SORT_COLUMNS:
        errors.append(FieldError("sort", f"unknown sort field {query.sort!r}", "enum"))
    if errors:
        raise InvalidInput(errors)


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
    """Filtered, sorted, paginated pets of one tenant. Raises InvalidInput for bad ranges."""
    _check_query(query)
    limit = min(max(query.limit, 1), MAX_PAGE_SIZE)
    page = max(query.page, 1)
    conditions = _filters(query)
    column = SORT_COLUMNS[query.sort]
    order = (column.desc(), Pet.id.desc()) if query.descending else (column.asc(), Pet.id.asc())

    def work(session: Session) -> Page[Pet]:
        total = session.scalar(select(func.count()).select_from(Pet).where(*conditions))
        rows = session.scalars(
            select(Pet).where(*conditions).order_by(*order).offset((page - 1) * limit).limit(limit)
        )
        return Page(items=list(rows), total=total or 0, page=page, limit=limit)

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
