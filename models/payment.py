from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Numeric, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, TenantScoped, UTCDateTime, utcnow, uuid7

_LIVE = "status IN ('PROCESSING', 'SUCCEEDED')"


class Payment(TenantScoped, Base):
    """One attempt to pay an order. Only the masked, public part of the source is stored (brand,
    last four digits, holder, expiry); full numbers and CVCs never reach the database."""

    __tablename__ = "payments"
    __table_args__ = (
        # One payment in flight or succeeded per order: a second concurrent attempt is refused.
        Index(
            "uq_payments_live_order",
            "order_id",
            unique=True,
            sqlite_where=text(_LIVE),
            postgresql_where=text(_LIVE),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid7)
    order_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    amount: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[dict[str, Any]] = mapped_column(JSON)
    failure_code: Mapped[str | None] = mapped_column(String(40))
    processor_reference: Mapped[str | None] = mapped_column(String(64))
    receipt_id: Mapped[str | None] = mapped_column(String(64))
    refund_reference: Mapped[str | None] = mapped_column(String(64))
    """Set once the processor reversed a voided (CANCELLED) payment; NULL while it is owed."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
