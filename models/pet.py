from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, Index, Integer, Numeric, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, TenantScoped, UTCDateTime, utcnow, uuid7
from models.enums import Currency

SORT_INDEXES = {
    "ix_pets_tenant_created": ("created_at",),
    "ix_pets_tenant_updated": ("updated_at",),
    "ix_pets_tenant_name": ("name",),
    "ix_pets_tenant_age": ("age_months",),
    "ix_pets_tenant_price": ("price",),
    "ix_pets_tenant_status_created": ("status", "created_at"),
    "ix_pets_tenant_species_created": ("species", "created_at"),
}
"""The list's indexes (migration 0015): each leads with the tenant, then a sort key the spec
offers (or a status/species filter, then the default sort), then the id that breaks ties, so a
page (offset or keyset) is an index range read in order, with no sort step, at any table size."""


class Pet(TenantScoped, Base):
    __tablename__ = "pets"
    __table_args__ = tuple(
        Index(name, "tenant_id", *columns, "id") for name, columns in SORT_INDEXES.items()
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid7)
    name: Mapped[str] = mapped_column(String(50))
    species: Mapped[str] = mapped_column(String(16), index=True)
    breed: Mapped[str | None] = mapped_column(String(100))
    age_months: Mapped[int] = mapped_column(Integer)
    size: Mapped[str | None] = mapped_column(String(16))
    color: Mapped[str | None] = mapped_column(String(50))
    gender: Mapped[str | None] = mapped_column(String(16))
    good_with_kids: Mapped[bool | None] = mapped_column(Boolean)
    good_with_pets: Mapped[bool | None] = mapped_column(Boolean)
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    currency: Mapped[str] = mapped_column(String(3), default=Currency.USD)
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    photos: Mapped[list[str]] = mapped_column(JSON, default=list)
    medical_info: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PetCount(Base):
    """How many pets a tenant has per species and status, kept exact by database triggers on
    ``pets`` (migration 0015) in the writing transaction: totals of the list and the inventory
    read these few rows instead of counting the table."""

    __tablename__ = "pet_counts"

    tenant_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    species: Mapped[str] = mapped_column(String(16), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)
