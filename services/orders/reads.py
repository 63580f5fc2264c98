"""Get Order's lean read (issue 15): Core statements built once, the tenant a bound parameter
(``:tenant``) of each, no ORM session. The rows become transient (never attached) Order and
Payment objects, so the dump functions and OrderView stay as they are. An unpaid order whose
hold is due is left to the write unit (reading it there ends the hold)."""

from __future__ import annotations

import uuid

from sqlalchemy import BindParameter, bindparam, select
from sqlalchemy.engine import Connection

from models import Order, Payment
from models.enums import PaymentStatus

ORDERS = Order.__table__
PAYMENTS = Payment.__table__
TENANT: BindParameter[str] = bindparam("tenant")

GET_ORDER = select(ORDERS).where(ORDERS.c.tenant_id == TENANT, ORDERS.c.id == bindparam("id"))
SETTLED_PAYMENT = (
    select(PAYMENTS)
    .where(
        PAYMENTS.c.tenant_id == TENANT,
        PAYMENTS.c.order_id == bindparam("id"),
        PAYMENTS.c.status.in_((PaymentStatus.SUCCEEDED, PaymentStatus.CANCELLED)),
    )
    .order_by(PAYMENTS.c.created_at.desc())
    .limit(1)
)


def get_order(conn: Connection, tenant: str, order_id: uuid.UUID) -> Order | None:
    row = conn.execute(GET_ORDER, {"tenant": tenant, "id": order_id}).first()
    return None if row is None else Order(**row._mapping)


def settled_payment(conn: Connection, tenant: str, order_id: uuid.UUID) -> Payment | None:
    row = conn.execute(SETTLED_PAYMENT, {"tenant": tenant, "id": order_id}).first()
    return None if row is None else Payment(**row._mapping)
