"""Adoption orders: reserve a pet, read, cancel, and the order status machine.

Rules (documented in the spec):
- Anyone may order, with or without a token. The pet must be AVAILABLE; the order reserves it
  (pet → PENDING) in the same transaction, and the price comes from the pet, never the client.
  A guest order (no token) returns a one-time ``guestToken``; only that token, the owner or an
  admin can read, pay or cancel the order. Everyone else is told it does not exist.
- An unpaid order holds its pet for ``hold`` (default 30 minutes; a guest's for ``guest_hold``,
  default 10 minutes); once the hold is over the order is CANCELLED and the pet released the
  next time either is touched.
- A client holds at most ``max_unpaid`` unpaid (PLACED, unexpired) orders at a time: an account
  counts its own, guests are counted per client address (kept on their PLACED orders only as a
  keyed hash, dropped when the order leaves PLACED). The count and the insert run in one write
  transaction, serialised per client (SQLite: BEGIN IMMEDIATE; PostgreSQL: a transaction-scoped
  advisory lock on the client), so concurrent orders by one client never overshoot.
- A hold is not renewed by its own client: when an unpaid order lapses or its client cancels it,
  that client (the account; a guest's address) may not order the same pet again for ``rehold``
  (default: the hold); everyone else may order it at once. A guest's lapsed or cancelled hold
  keeps its keyed hash until then (``forget_ended_holds`` clears it).
- PLACED → APPROVED (payment) → SHIPPED → DELIVERED (pet ADOPTED); customers cancel from PLACED
  or APPROVED, staff from any non-final state. Every other transition is refused here.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, or_, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import Order, Payment, Pet
from models.base import utcnow
from models.database import Database
from models.enums import ChangedBy, OrderStatus, PaymentStatus, PetStatus
from services.orders import reads
from services.shared import audit, events
from services.shared.audit import AuditAction, AuditEntity
from services.shared.errors import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    RecentlyHeld,
    UnpaidOrderLimit,
)
from services.shared.pagination import Page, PageRequest
from services.shared.principal import Principal, require_scope
from services.shared.rules import Rules

PLACED, APPROVED, SHIPPED, DELIVERED, CANCELLED = (
    OrderStatus.PLACED,
    OrderStatus.APPROVED,
    OrderStatus.SHIPPED,
    OrderStatus.DELIVERED,
    OrderStatus.CANCELLED,
)
TRANSITIONS: dict[str, frozenset[str]] = {
    PLACED: frozenset({APPROVED, CANCELLED}),
    APPROVED: frozenset({SHIPPED, CANCELLED}),
    SHIPPED: frozenset({DELIVERED, CANCELLED}),
    DELIVERED: frozenset(),
    CANCELLED: frozenset(),
}
CUSTOMER_CANCELLABLE = frozenset({PLACED, APPROVED})
STAFF_TARGETS = (SHIPPED, DELIVERED, CANCELLED)
"""What Update Order Status may ask for (#/components/schemas/OrderStatusChange)."""
DEFAULT_HOLD = timedelta(minutes=30)
DEFAULT_GUEST_HOLD = timedelta(minutes=10)
DEFAULT_MAX_UNPAID = 3


@dataclass(frozen=True)
class HoldPolicy:
    """How long an unpaid order holds its pet, how many such holds one client may have
    (``max_unpaid`` 0: no cap), and how long a client whose unpaid hold on a pet lapsed or was
    cancelled by it waits before holding that pet again (``rehold`` 0: no wait)."""

    hold: timedelta = DEFAULT_HOLD
    guest_hold: timedelta = DEFAULT_GUEST_HOLD
    max_unpaid: int = DEFAULT_MAX_UNPAID
    rehold: timedelta = 2 * DEFAULT_HOLD

    def hold_for(self, principal: Principal) -> timedelta:
        return self.hold if principal.is_authenticated else min(self.hold, self.guest_hold)


@dataclass(frozen=True)
class NewOrder:
    """Place Order's command: the pet to adopt (every other Order field is the server's).
    Validates itself: ``pet_id`` may arrive as a string and must be a UUID."""

    pet_id: uuid.UUID

    def __post_init__(self) -> None:
        rules = Rules()
        object.__setattr__(self, "pet_id", rules.uuid("petId", self.pet_id))
        rules.done()


@dataclass(frozen=True)
class OrderAccess:
    """Who is asking about an order: the principal, plus a guest token when one was sent."""

    principal: Principal
    guest_token: str | None = None


@dataclass(frozen=True)
class OrderView:
    """An order with its settled payment (the receipt), and the guest token right after a
    guest placed it (shown once, never stored in clear)."""

    order: Order
    payment: Payment | None = None
    guest_token: str | None = None


def settled_payment(session: Session, order_id: uuid.UUID) -> Payment | None:
    return session.scalars(
        select(Payment)
        .where(
            Payment.order_id == order_id,
            Payment.status.in_((PaymentStatus.SUCCEEDED, PaymentStatus.CANCELLED)),
        )
        .order_by(Payment.created_at.desc())
    ).first()


def _payment_in_flight(session: Session, order_id: uuid.UUID) -> bool:
    return bool(
        session.scalar(
            select(
                exists().where(
                    Payment.order_id == order_id, Payment.status == PaymentStatus.PROCESSING
                )
            )
        )
    )


def hash_guest_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _may_see(order: Order, access: OrderAccess) -> bool:
    who = access.principal
    if who.is_admin:
        return True
    if who.subject is not None and order.user_id == who.subject:
        return True
    if access.guest_token and order.guest_token_hash:
        return hmac.compare_digest(order.guest_token_hash, hash_guest_token(access.guest_token))
    return False


def load_visible(session: Session, access: OrderAccess, order_id: uuid.UUID) -> Order:
    """The order, locked for update, if the caller may see it; NotFound otherwise (an order of
    someone else is reported exactly like a missing one)."""
    order = session.get(Order, order_id, with_for_update=True)
    if order is None or not _may_see(order, access):
        raise NotFound("order", order_id)
    _expire_if_due(session, order)
    return order


def change_status(
    session: Session,
    order: Order,
    new: str,
    changed_by: str = ChangedBy.SYSTEM,
    actor: uuid.UUID | None = None,
    reason: str | None = None,
) -> None:
    """The one place an order's status changes: applies the pet side effects and publishes
    ``order.statusChanged`` in the same transaction. ``actor``: the account that made the
    change (the event's ``actorId``; none for the system); ``reason``: why, when staff said so
    (Force Cancel Order)."""
    if new not in TRANSITIONS[order.status]:
        raise Conflict(
            f"An order in status {order.status} cannot become {new}.",
            field="status",
            code="invalid_state",
        )
    if new == CANCELLED:
        if _payment_in_flight(session, order.id):
            raise Conflict(
                "A payment for this order is being processed; try again in a moment.",
                field="status",
                code="invalid_state",
            )
        paid = settled_payment(session, order.id)
        if paid is not None and paid.status == PaymentStatus.SUCCEEDED:
            paid.status = PaymentStatus.CANCELLED  # voided: the charge is reversed
            paid.updated_at = utcnow()
    pet = session.get(Pet, order.pet_id, with_for_update=True)
    if pet is not None:
        if new == CANCELLED and pet.status == PetStatus.PENDING:
            pet.status = PetStatus.AVAILABLE
        elif new == DELIVERED:
            pet.status = PetStatus.ADOPTED
        if new in (CANCELLED, DELIVERED):
            pet.version += 1
            pet.updated_at = utcnow()
    previous = order.status
    order.status = new
    if previous == PLACED and new == CANCELLED and changed_by != ChangedBy.STAFF:
        # An unpaid hold that lapsed (SYSTEM) or that its client cancelled: the re-hold
        # cooldown starts; a guest's keyed address stays until it is over.
        order.hold_ended_at = utcnow()
    else:
        order.guest_client = None  # only an unpaid hold is counted against its client
    order.expires_at = None
    order.version += 1
    order.updated_at = utcnow()
    data = {
        "order": events.order_snapshot(order),
        "previousStatus": previous,
        "newStatus": new,
        "changedAt": events.rfc3339(order.updated_at),
        "changedBy": changed_by,
    }
    if actor is not None:
        data["actorId"] = str(actor)
    if reason:
        data["reason"] = reason
    events.publish(session, order, events.ORDER_STATUS_CHANGED, data)


def _expire_if_due(session: Session, order: Order, now: datetime | None = None) -> None:
    """An unpaid order past its hold is cancelled (unless a payment is being processed)."""
    now = now or utcnow()
    if order.status != PLACED or order.expires_at is None or order.expires_at > now:
        return
    if not _payment_in_flight(session, order.id):
        change_status(session, order, CANCELLED)


def _release_expired_hold(session: Session, pet_id: uuid.UUID) -> None:
    active = session.scalars(
        select(Order).where(Order.pet_id == pet_id, Order.status == PLACED).with_for_update()
    ).first()
    if active is not None:
        _expire_if_due(session, active)


def _lock_client(session: Session, tenant: str, client: str) -> None:
    """Serialise one client's order placements until the transaction ends, so that counting
    its unpaid orders and inserting one cannot interleave with another of its requests.
    PostgreSQL: a transaction-scoped advisory lock on a 64-bit hash of the client (no row to
    lock for a guest); SQLite's write transactions are already serial (BEGIN IMMEDIATE)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    digest = hashlib.sha256(f"petstore:unpaid-orders:{tenant}:{client}".encode()).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _held_lately(
    session: Session,
    principal: Principal,
    guest_client: str | None,
    pet_id: uuid.UUID,
    rehold: timedelta,
    now: datetime,
) -> int:
    """Seconds until this client may hold ``pet_id`` again (0: now): its last unpaid hold on the
    pet that lapsed or that it cancelled ended less than ``rehold`` ago. The client is the
    account *or* the address (``guest_client``, kept on members' holds too): switching between
    a token and none, or between accounts behind one address, does not renew a hold."""
    if rehold <= timedelta(0):
        return 0
    mine = (
        or_(Order.user_id == principal.subject, Order.guest_client == guest_client)
        if principal.subject is not None
        else Order.guest_client == guest_client
    )
    ended = session.scalar(
        select(func.max(Order.hold_ended_at)).where(
            mine, Order.pet_id == pet_id, Order.hold_ended_at > now - rehold
        )
    )
    if ended is None:
        return 0
    if ended.tzinfo is None:  # SQLite: an aggregate is not typed as UTCDateTime
        ended = ended.replace(tzinfo=now.tzinfo)
    return max(1, math.ceil((ended + rehold - now).total_seconds()))


def _unpaid_holds(
    session: Session, principal: Principal, guest_client: str | None, now: datetime
) -> int:
    mine = (
        Order.user_id == principal.subject
        if principal.subject is not None
        else and_(Order.user_id.is_(None), Order.guest_client == guest_client)
    )
    return int(
        session.scalar(
            select(func.count())
            .select_from(Order)
            .where(mine, Order.status == PLACED, Order.expires_at > now)
        )
        or 0
    )


async def create_order(
    db: Database,
    principal: Principal,
    pet_id: uuid.UUID,
    policy: HoldPolicy | None = None,
    guest_client: str | None = None,
) -> OrderView:
    """Reserve an AVAILABLE pet. ``guest_client``: who a guest is (a keyed hash of its address),
    for the cap on unpaid orders. Raises UnpaidOrderLimit (the client's cap is reached),
    InvalidInput (no such pet), Conflict (not available), RecentlyHeld (this client's own hold
    on the pet lapsed or was cancelled by it less than ``policy.rehold`` ago)."""
    policy = policy or HoldPolicy()
    guest_token = None if principal.is_authenticated else secrets.token_urlsafe(32)
    guest_client = guest_client or "unknown"  # members' holds keep it too (re-hold waits)
    hold = policy.hold_for(principal)

    def work(session: Session) -> Order:
        now = utcnow()
        if policy.max_unpaid > 0:
            _lock_client(session, principal.tenant, str(principal.subject or guest_client))
            if _unpaid_holds(session, principal, guest_client, now) >= policy.max_unpaid:
                raise UnpaidOrderLimit(policy.max_unpaid)
        pet = session.get(Pet, pet_id, with_for_update=True)
        if pet is None:
            raise InvalidInput([FieldError("petId", f"no pet with ID '{pet_id}'", "not_found")])
        if pet.status == PetStatus.PENDING:
            _release_expired_hold(session, pet_id)
        if pet.status != PetStatus.AVAILABLE:
            raise Conflict(
                f"The pet is {pet.status}, not AVAILABLE; it cannot be ordered.",
                field="petId",
                code="unavailable",
            )
        wait = _held_lately(session, principal, guest_client, pet_id, policy.rehold, now)
        if wait:
            raise RecentlyHeld(wait)
        order = Order(
            pet_id=pet.id,
            user_id=principal.subject,
            guest_token_hash=hash_guest_token(guest_token) if guest_token else None,
            guest_client=guest_client,
            status=PLACED,
            total_amount=pet.price,
            currency=pet.currency,
            expires_at=now + hold,
            version=1,
            created_at=now,
            updated_at=now,
        )
        pet.status = PetStatus.PENDING
        pet.version += 1
        pet.updated_at = now
        session.add(order)
        try:
            session.flush()
        except IntegrityError as exc:  # the partial unique index: another active order won
            raise Conflict(
                "The pet was reserved by another order.", field="petId", code="unavailable"
            ) from exc
        return order

    order = await db.run(principal.tenant, work, write=True)
    return OrderView(order, None, guest_token)


async def get_order(db: Database, access: OrderAccess, order_id: uuid.UUID) -> OrderView:
    """Raises NotFound for a missing order and for someone else's. A read unit on the lean
    path (services.orders.reads); an unpaid order past its hold goes on to a write unit, which
    ends the hold as it reads it."""

    def peek(conn: Connection, tenant: str) -> OrderView | None:
        order = reads.get_order(conn, tenant, order_id)
        if order is None or not _may_see(order, access):
            raise NotFound("order", order_id)
        due = order.expires_at is not None and order.expires_at <= utcnow()
        if order.status == PLACED and due:
            return None  # the hold is over: the write unit below ends it
        return OrderView(order, reads.settled_payment(conn, tenant, order_id))

    view = await db.read(access.principal.tenant, peek)
    if view is not None:
        return view

    def work(session: Session) -> OrderView:
        order = load_visible(session, access, order_id)
        return OrderView(order, settled_payment(session, order.id))

    return await db.run(access.principal.tenant, work, write=True)


async def cancel_order(
    db: Database,
    access: OrderAccess,
    order_id: uuid.UUID,
    reason: str | None = None,
    audit_as: AuditAction | None = None,
) -> OrderView:
    """Customers cancel PLACED or APPROVED orders; staff any order not yet final (a staff
    cancellation may say why: ``reason``). The row stays (status CANCELLED) and the pet is
    released; the event names the account that cancelled (``actorId``). With ``audit_as``
    (the Admin API's Force Cancel Order) the cancellation's audit row is written in the same
    transaction. Raises NotFound, Conflict."""

    def work(session: Session) -> OrderView:
        order = load_visible(session, access, order_id)
        if order.status == CANCELLED:
            raise Conflict("The order is already CANCELLED.", field="status", code="invalid_state")
        if order.status not in CUSTOMER_CANCELLABLE and not access.principal.is_admin:
            raise Conflict(
                f"An order in status {order.status} can no longer be cancelled; "
                "only PLACED or APPROVED orders can.",
                field="status",
                code="invalid_state",
            )
        who = ChangedBy.STAFF if access.principal.is_admin else ChangedBy.CUSTOMER
        before = order.status
        change_status(session, order, CANCELLED, who, access.principal.subject, reason)
        view = OrderView(order, settled_payment(session, order.id))
        if audit_as is not None:
            audit.record(  # last: the audit head is the unit's last lock
                session,
                access.principal,
                audit_as,
                AuditEntity.ORDER,
                order.id,
                before={"status": before},
                after={"status": CANCELLED, "reason": reason},
            )
        return view

    return await db.run(access.principal.tenant, work, write=True)


async def advance_order(
    db: Database, principal: Principal, order_id: uuid.UUID, status: str
) -> OrderView:
    """Staff move an order through fulfilment (SHIPPED, DELIVERED) or cancel it.
    Raises Forbidden, InvalidInput (not one of those), NotFound, Conflict (illegal transition)."""
    if not principal.is_admin:
        raise Forbidden("Fulfilling orders is for shelter staff (admin scope).")
    if status not in STAFF_TARGETS:
        allowed = ", ".join(STAFF_TARGETS)
        raise InvalidInput([FieldError("status", f"must be one of {allowed}", "enum")])

    def work(session: Session) -> OrderView:
        order = load_visible(session, OrderAccess(principal), order_id)
        change_status(session, order, status, ChangedBy.STAFF, principal.subject)
        return OrderView(order, settled_payment(session, order.id))

    return await db.run(principal.tenant, work, write=True)


async def expire_overdue(db: Database, limit: int = 100) -> int:
    """System job: cancel unpaid orders past their hold in every tenant (releasing their pets
    and publishing the status change). Reads would do it lazily; this keeps the inventory true."""

    def work(session: Session) -> int:
        stmt = (
            select(Order)
            .where(
                Order.status == PLACED,
                Order.expires_at <= utcnow(),
                ~exists().where(
                    Payment.order_id == Order.id, Payment.status == PaymentStatus.PROCESSING
                ),
            )
            .order_by(Order.expires_at)
            .limit(limit)
        )
        if db.skip_locked:
            stmt = stmt.with_for_update(skip_locked=True)
        overdue = list(session.scalars(stmt))
        for order in overdue:
            _expire_if_due(session, order)
        return len(overdue)

    return await db.run_system(work, write=True)


async def forget_ended_holds(db: Database, rehold: timedelta) -> int:
    """System job: drop the keyed address of guest holds whose re-hold cooldown is over (it is
    kept only while it can refuse that guest's next order for the pet)."""

    def work(session: Session) -> int:
        stmt = (
            update(Order)
            .where(
                Order.status == CANCELLED,
                Order.guest_client.is_not(None),
                Order.hold_ended_at <= utcnow() - max(rehold, timedelta(0)),
            )
            .values(guest_client=None)
        )
        return int(getattr(session.execute(stmt), "rowcount", 0) or 0)

    return await db.run_system(work, write=True)


async def list_orders(db: Database, principal: Principal, paging: PageRequest) -> Page[OrderView]:
    """My Orders: the caller's own orders, newest first, each with its settled payment.
    Requires a token with read:orders. Two statements: the page with the total (a window
    count), then the page's settled payments. (A read: an expired hold still shows PLACED here
    until the sweep or the next read of that order ends it.)"""
    require_scope(principal, "read:orders")

    def work(session: Session) -> Page[OrderView]:
        mine = Order.user_id == principal.subject
        rows = session.execute(
            select(Order, func.count().over())
            .where(mine)
            .order_by(Order.created_at.desc(), Order.id.desc())
            .offset(paging.offset)
            .limit(paging.limit)
        ).all()
        if rows:
            total = int(rows[0][1])
        else:  # past the end: the window count has no row to ride on
            total = session.scalar(select(func.count()).select_from(Order).where(mine)) or 0
        paid: dict[uuid.UUID, Payment] = {}
        if rows:
            payments = session.scalars(
                select(Payment)
                .where(
                    Payment.order_id.in_([order.id for order, _ in rows]),
                    Payment.status.in_((PaymentStatus.SUCCEEDED, PaymentStatus.CANCELLED)),
                )
                .order_by(Payment.created_at)
            )
            paid = {p.order_id: p for p in payments}  # the latest per order wins
        return paging.of_rows([OrderView(order, paid.get(order.id)) for order, _ in rows], total)

    return await db.run(principal.tenant, work)
