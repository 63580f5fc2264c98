"""FastAPI peer: what a Python team would write for the same three Pet endpoints.

FastAPI + async SQLAlchemy (aiosqlite) over a copy of the benchmark's SQLite file, pydantic v2
models as ``response_model`` (so responses are validated too), a validated request body, and an
ES256 bearer-token check for writes (PyJWT, with the public half of our server's signing key
and the same audience).

Environment: ``BENCH_PEER_DATABASE_URL`` (``sqlite+aiosqlite:///...``) and
``BENCH_JWT_PUBLIC_KEY`` (PEM).
Run: ``uvicorn --factory bench.fastapi_peer:create_app``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import jwt
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer
from pydantic.alias_generators import to_camel
from sqlalchemy import JSON, Boolean, DateTime, Integer, Numeric, String, Text, Uuid, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

DATABASE_URL_ENV = "BENCH_PEER_DATABASE_URL"
JWT_PUBLIC_KEY_ENV = "BENCH_JWT_PUBLIC_KEY"  # PEM: the public half of our server's signing key
AUDIENCE = "petstore-api"
MAX_LIMIT = 100

# --- database -------------------------------------------------------------------------------


class Base(DeclarativeBase):
    pass


class PetRow(Base):
    """The ``pets`` table as our migrations create it (SQLite stores UTC datetimes naive)."""

    __tablename__ = "pets"

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(50))
    species: Mapped[str] = mapped_column(String(16))
    breed: Mapped[str | None] = mapped_column(String(100))
    age_months: Mapped[int] = mapped_column(Integer)
    size: Mapped[str | None] = mapped_column(String(16))
    color: Mapped[str | None] = mapped_column(String(50))
    gender: Mapped[str | None] = mapped_column(String(16))
    good_with_kids: Mapped[bool | None] = mapped_column(Boolean)
    good_with_pets: Mapped[bool | None] = mapped_column(Boolean)
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    currency: Mapped[str] = mapped_column(String(3))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    photos: Mapped[list[str]] = mapped_column(JSON, default=list)
    medical_info: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime())
    updated_at: Mapped[datetime] = mapped_column(DateTime())
    tenant_id: Mapped[str] = mapped_column(String(36), default="")


SHARED = ""  # tenant_id of the shared pool


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]

# --- schemas --------------------------------------------------------------------------------


def _rfc3339(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


Timestamp = Annotated[datetime, PlainSerializer(_rfc3339, return_type=str, when_used="json")]
Species = Literal["DOG", "CAT", "RABBIT", "BIRD", "REPTILE", "OTHER"]
PetStatus = Literal["AVAILABLE", "PENDING", "ADOPTED", "NOT_AVAILABLE"]
PetSize = Literal["SMALL", "MEDIUM", "LARGE"]
Gender = Literal["MALE", "FEMALE", "UNKNOWN"]
Currency = Literal["USD", "EUR", "GBP", "CAD", "AUD"]
Text50 = Annotated[str, Field(max_length=50, pattern=r"^[^\x00]*$")]
MONEY = r"^(0|[1-9][0-9]{0,7})(\.[0-9]{1,2})?$"


def _is_none(value: object) -> bool:
    return value is None


def omitted_if_none() -> Any:
    """Optional response field left out of the JSON when None (as our API does), not null."""
    return Field(None, exclude_if=_is_none)


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class MedicalInfo(CamelModel):
    model_config = ConfigDict(extra="forbid")

    spayed_neutered: bool | None = None
    vaccinated: bool | None = None
    microchipped: bool | None = None
    special_needs: bool | None = None
    notes: str | None = Field(None, max_length=1000)


class PetCreate(CamelModel):
    name: str = Field(min_length=1, max_length=50, pattern=r"^[^\x00]*$")
    species: Species
    age_months: int = Field(ge=0, le=600)
    price: str = Field(pattern=MONEY)
    currency: Currency = "USD"
    status: PetStatus = "AVAILABLE"
    breed: str | None = Field(None, max_length=100, pattern=r"^[^\x00]*$")
    size: PetSize | None = None
    color: Text50 | None = None
    gender: Gender | None = None
    good_with_kids: bool | None = None
    good_with_pets: bool | None = None
    description: str | None = Field(None, max_length=2000, pattern=r"^[^\x00]*$")
    medical_info: MedicalInfo | None = None


class MedicalInfoOut(CamelModel):
    """As stored (camelCase keys); keys not stored stay out of the JSON, as ours does."""

    spayed_neutered: bool | None = omitted_if_none()
    vaccinated: bool | None = omitted_if_none()
    microchipped: bool | None = omitted_if_none()
    special_needs: bool | None = omitted_if_none()
    notes: str | None = omitted_if_none()


class SelfLink(BaseModel):
    self: str
    adopt: str | None = omitted_if_none()


class PetOut(CamelModel):
    id: uuid.UUID
    name: str
    species: Species
    breed: str | None = omitted_if_none()
    age_months: int
    size: PetSize | None = omitted_if_none()
    color: str | None = omitted_if_none()
    gender: Gender | None = omitted_if_none()
    good_with_kids: bool | None = omitted_if_none()
    good_with_pets: bool | None = omitted_if_none()
    price: Decimal
    currency: Currency
    description: str | None = omitted_if_none()
    medical_info: MedicalInfoOut | None = omitted_if_none()
    status: PetStatus
    photos: list[str]
    tenant_id: uuid.UUID | None = None
    created_at: Timestamp
    updated_at: Timestamp
    links: SelfLink


class Pagination(CamelModel):
    page: int
    limit: int
    total_items: int
    total_pages: int


class CollectionLinks(BaseModel):
    self: str
    first: str
    last: str
    prev: str | None = omitted_if_none()
    next: str | None = omitted_if_none()


class PetCollection(BaseModel):
    data: list[PetOut]
    pagination: Pagination
    links: CollectionLinks


def api_base(request: Request) -> str:
    return f"{request.base_url}v1"


def pet_out(row: PetRow, base: str) -> PetOut:
    """Built through pydantic validation (enums, types); FastAPI then serializes it through the
    route's response_model."""
    return PetOut.model_validate(
        {
            "id": row.id,
            "name": row.name,
            "species": row.species,
            "breed": row.breed,
            "age_months": row.age_months,
            "size": row.size,
            "color": row.color,
            "gender": row.gender,
            "good_with_kids": row.good_with_kids,
            "good_with_pets": row.good_with_pets,
            "price": row.price,
            "currency": row.currency,
            "description": row.description,
            "medical_info": row.medical_info,
            "status": row.status,
            "photos": row.photos,
            "tenant_id": row.tenant_id or None,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
            "links": {
                "self": f"{base}/pets/{row.id}",
                # where to adopt it, while it can be (as ours does)
                **({"adopt": f"{base}/orders"} if row.status == "AVAILABLE" else {}),
            },
        }
    )


# --- auth -----------------------------------------------------------------------------------

bearer = HTTPBearer()


async def require_writer(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials, Depends(bearer)]
) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            credentials.credentials,
            request.app.state.jwt_public_key,
            algorithms=["ES256"],
            audience=AUDIENCE,
            options={"require": ["exp", "sub", "scope"]},
        )
    except jwt.PyJWTError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid token") from exc
    if "write:pets" not in str(claims["scope"]).split():
        raise HTTPException(status.HTTP_403_FORBIDDEN, "write:pets scope required")
    return claims


WriterDep = Annotated[dict[str, Any], Depends(require_writer)]

# --- app ------------------------------------------------------------------------------------


def create_app() -> FastAPI:
    database_url = os.environ[DATABASE_URL_ENV]
    jwt_public_key = os.environ[JWT_PUBLIC_KEY_ENV]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_async_engine(database_url)
        app.state.sessions = async_sessionmaker(engine, expire_on_commit=False)
        app.state.jwt_public_key = jwt_public_key
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(title="Pet Store (FastAPI peer)", lifespan=lifespan)

    @app.get("/v1/pets", response_model=PetCollection)
    async def list_pets(
        request: Request,
        session: SessionDep,
        page: Annotated[int, Query(ge=1)] = 1,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
    ) -> PetCollection:
        shared = PetRow.tenant_id == SHARED
        total = await session.scalar(select(func.count()).select_from(PetRow).where(shared)) or 0
        rows = await session.scalars(
            select(PetRow)
            .where(shared)
            .order_by(PetRow.created_at.desc(), PetRow.id.desc())
            .offset((page - 1) * limit)
            .limit(limit)
        )
        base = api_base(request)
        pages = max(1, -(-total // limit))

        def link(number: int) -> str:
            return f"{base}/pets?page={number}&limit={limit}"

        return PetCollection(
            data=[pet_out(row, base) for row in rows],
            pagination=Pagination(page=page, limit=limit, total_items=total, total_pages=pages),
            links=CollectionLinks(
                self=link(page),
                first=link(1),
                last=link(pages),
                prev=link(min(page - 1, pages)) if page > 1 else None,
                next=link(page + 1) if page < pages else None,
            ),
        )

    @app.get("/v1/pets/{pet_id}", response_model=PetOut)
    async def get_pet(pet_id: uuid.UUID, request: Request, session: SessionDep) -> PetOut:
        row = await session.get(PetRow, pet_id)
        if row is None or row.tenant_id != SHARED:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "pet not found")
        return pet_out(row, api_base(request))

    @app.post("/v1/pets", response_model=PetOut, status_code=status.HTTP_201_CREATED)
    async def create_pet(
        body: PetCreate, request: Request, response: Response, session: SessionDep, _: WriterDep
    ) -> PetOut:
        now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        row = PetRow(
            **body.model_dump(exclude={"price", "medical_info"}),
            price=Decimal(body.price),
            medical_info=body.medical_info.model_dump() if body.medical_info else None,
            photos=[],
            version=1,
            tenant_id=SHARED,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        await session.commit()
        base = api_base(request)
        response.headers["Location"] = f"{base}/pets/{row.id}"
        return pet_out(row, base)

    return app
