from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, Numeric, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, TenantScoped, UTCDateTime, utcnow, uuid7
from models.enums import Currency


class Pet(TenantScoped, Base):
    __tablename__ = "pets"

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
