from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Integer, Numeric, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, TenantScoped, UTCDateTime, utcnow, uuid7
from models.enums import OrderStatus

ACTIVE_ORDER_STATUSES = (OrderStatus.PLACED, OrderStatus.APPROVED, OrderStatus.SHIPPED)
_ACTIVE = "status IN ('PLACED', 'APPROVED', 'SHIPPED')"


class Order(TenantScoped, Base):
    """An adoption order. ``user_id`` is NULL for a guest order (``guest_token_hash`` set)."""

    __tablename__ = "orders"
    __table_args__ = (
        # At most one active order per pet, whatever the code above does: the database refuses a
        # second reservation even if two transactions both saw the pet AVAILABLE.
        Index(
            "uq_orders_active_pet",
            "pet_id",
            unique=True,
            sqlite_where=text(_ACTIVE),
            postgresql_where=text(_ACTIVE),
        ),
        # My Orders: one user's orders of a tenant, newest first (migration 0015).
        Index("ix_orders_tenant_user_created", "tenant_id", "user_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid7)
    pet_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("pets.id", ondelete="RESTRICT"), index=True
    )
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid(), ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    guest_token_hash: Mapped[str | None] = mapped_column(String(64))
    guest_client: Mapped[str | None] = mapped_column(String(64), index=True)
    """Who placed a guest order (a keyed hash of the client address), while it is PLACED: the
    cap on unpaid orders counts a guest's holds by it. NULL for members and once it moves on
    (a lapsed or guest-cancelled hold keeps it for the re-hold cooldown, see ``hold_ended_at``)."""
    hold_ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """When this unpaid hold ended by lapsing or by its client cancelling it (not staff): that
    client may not order the pet again until the re-hold cooldown is over. A guest order keeps
    its ``guest_client`` until then (the housekeeping job clears it)."""
    status: Mapped[str] = mapped_column(String(16), index=True)
    total_amount: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    currency: Mapped[str] = mapped_column(String(3))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, default=1)
    callbacks_registered: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Callback Example requests accepted for this order, ever (capped per order)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
