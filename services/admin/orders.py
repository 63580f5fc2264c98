"""Order management (Admin API): every order of the tenant, and Force Cancel Order.

Force cancel is the customers' Cancel Order use case (services/orders: OrderService.cancel)
called with the admin as the caller: it releases the pet, voids and refunds a captured payment
through the processor port, and publishes ``order.statusChanged`` with ``changedBy: staff``,
the admin's ``actorId`` and the reason. Staff may cancel from any non-final state (PLACED,
APPROVED, SHIPPED); CANCELLED and DELIVERED orders are Conflict."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Order, Payment
from models.database import Database
from models.enums import OrderStatus, PaymentStatus
from services.admin import require_admin
from services.orders.orders import OrderAccess, OrderView
from services.orders.service import OrderService
from services.shared.audit import AuditAction
from services.shared.errors import FieldError, InvalidInput
from services.shared.pagination import Page, PageRequest
from services.shared.principal import Principal
from services.shared.rules import Rules


@dataclass(frozen=True)
class OrderQuery:
    """List All Orders' filters: status, the ordering account, the pet, created in
    ``[created_from, created_to)``. Validates itself."""

    status: str | None = None
    user_id: uuid.UUID | None = None
    pet_id: uuid.UUID | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None

    def __post_init__(self) -> None:
        rules = Rules()
        rules.choice("status", self.status, OrderStatus, optional=True)
        rules.done()
        if self.created_from and self.created_to and self.created_from >= self.created_to:
            raise InvalidInput([FieldError("from", "must be earlier than to", "range")])


@dataclass(frozen=True)
class ForceCancel:
    """Force Cancel Order: why (1 to 500 characters)."""

    reason: str

    def __post_init__(self) -> None:
        rules = Rules()
        rules.text("reason", self.reason, min_len=1, max_len=500)
        if isinstance(self.reason, str) and self.reason and not self.reason.strip():
            rules.fail("reason", "must not be blank", "minLength")
        rules.done()


class OrderAdmin:
    def __init__(self, db: Database, orders: OrderService) -> None:
        self.db = db
        self.orders = orders

    async def list(
        self, principal: Principal, query: OrderQuery, paging: PageRequest
    ) -> Page[OrderView]:
        """List All Orders (admin): newest first, each with its settled payment. (A read: an
        expired hold still shows PLACED until the sweep or the next read of it ends it.)"""
        require_admin(principal)
        where = []
        if query.status:
            where.append(Order.status == query.status)
        if query.user_id:
            where.append(Order.user_id == query.user_id)
        if query.pet_id:
            where.append(Order.pet_id == query.pet_id)
        if query.created_from:
            where.append(Order.created_at >= query.created_from)
        if query.created_to:
            where.append(Order.created_at < query.created_to)

        def work(session: Session) -> Page[OrderView]:
            total = session.scalar(select(func.count()).select_from(Order).where(*where)) or 0
            rows = list(
                session.scalars(
                    select(Order)
                    .where(*where)
                    .order_by(Order.created_at.desc(), Order.id.desc())
                    .offset(paging.offset)
                    .limit(paging.limit)
                )
            )
            paid: dict[uuid.UUID, Payment] = {}
            if rows:
                payments = session.scalars(
                    select(Payment)
                    .where(
                        Payment.order_id.in_([o.id for o in rows]),
                        Payment.status.in_((PaymentStatus.SUCCEEDED, PaymentStatus.CANCELLED)),
                    )
                    .order_by(Payment.created_at)
                )
                paid = {p.order_id: p for p in payments}
            return paging.of_rows([OrderView(o, paid.get(o.id)) for o in rows], int(total))

        return await self.db.run(principal.tenant, work)

    async def force_cancel(
        self, principal: Principal, order_id: uuid.UUID, cancel: ForceCancel
    ) -> OrderView:
        """Force Cancel Order (admin): Cancel Order as staff, with a reason; the order as it is
        afterwards (its payment voided and refunded, when there was one). Raises NotFound,
        Conflict (a final state, or a payment being processed)."""
        require_admin(principal)
        access = OrderAccess(principal)
        await self.orders.cancel(access, order_id, cancel.reason, AuditAction.ORDER_FORCE_CANCELLED)
        return await self.orders.get(access, order_id)
