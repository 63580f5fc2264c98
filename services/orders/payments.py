"""Pay Order: charge a card or bank account for an order, synchronously.

Rules: the caller must be able to see the order (owner, guest token, admin); the order must be
PLACED; amount and currency must equal the order's. The charge runs outside any database
transaction: a PROCESSING payment row is written first (at most one per order, enforced by the
database), the processor is called, then the outcome is written. Success: payment SUCCEEDED with
a receipt, order APPROVED. Decline: payment FAILED, order stays PLACED (retry with another
source). Processor failure: payment FAILED, order stays PLACED (retry)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import Order, Payment
from models.base import utcnow, uuid7
from models.database import Database
from models.enums import Currency, PaymentStatus
from services.orders.orders import (
    APPROVED,
    CANCELLED,
    PLACED,
    OrderAccess,
    change_status,
    load_visible,
)
from services.orders.payment_sources import BankAccount, Card, PaymentSource
from services.orders.processor import (
    ChargeRequest,
    ChargeResult,
    PaymentProcessor,
    ProcessorUnavailable,
    RefundRequest,
)
from services.shared import audit, events
from services.shared.audit import AuditAction, AuditEntity
from services.shared.errors import (
    Conflict,
    FieldError,
    InvalidInput,
    PaymentDeclined,
    PaymentProcessorError,
)
from services.shared.principal import Principal
from services.shared.rules import Rules


@dataclass(frozen=True)
class PaymentInput:
    """Pay Order's command. Validates itself, its source included (card or bank account rules
    of payment_sources): a bad value raises InvalidInput naming every bad field."""

    amount: Decimal
    currency: str
    source: PaymentSource

    def __post_init__(self) -> None:
        rules = Rules()
        if rules.money("amount", self.amount) and isinstance(self.amount, str):
            object.__setattr__(self, "amount", Decimal(self.amount))
        object.__setattr__(self, "currency", rules.choice("currency", self.currency, Currency))
        if isinstance(self.source, Card | BankAccount):
            rules.extend(self.source.problems(date.today()))
        else:
            rules.fail("source", "must be a card or a bank account", "type")
        rules.done()


@dataclass(frozen=True)
class PaidOrder:
    payment: Payment
    order: Order


def _check_payable(order: Order, payment: PaymentInput) -> None:
    if order.status == CANCELLED:
        raise Conflict(
            "The order is CANCELLED and cannot be paid.", field="status", code="invalid_state"
        )
    if order.status != PLACED:
        raise Conflict(
            f"The order is already paid (status {order.status}).",
            field="status",
            code="invalid_state",
        )
    errors = []
    if payment.amount != order.total_amount:
        errors.append(
            FieldError(
                "amount", f"must equal the order's total {order.total_amount:.2f}", "mismatch"
            )
        )
    if payment.currency != order.currency:
        errors.append(
            FieldError("currency", f"must equal the order's currency {order.currency}", "mismatch")
        )
    if errors:
        raise InvalidInput(errors)


async def pay_order(
    db: Database,
    processor: PaymentProcessor,
    access: OrderAccess,
    order_id: uuid.UUID,
    payment: PaymentInput,
    receipt_base: str = "",
) -> PaidOrder:
    """Raises NotFound, Conflict (not payable / payment in flight), InvalidInput (source, amount),
    PaymentDeclined, PaymentProcessorError. ``receipt_base`` is the configured API base for the
    receipt link in the ``payment.succeeded`` event (never one taken from a request)."""
    tenant = access.principal.tenant

    def start(session: Session) -> Payment:
        order = load_visible(session, access, order_id)
        _check_payable(order, payment)
        now = utcnow()
        row = Payment(
            id=uuid7(),
            order_id=order.id,
            amount=payment.amount,
            currency=payment.currency,
            status=PaymentStatus.PROCESSING,
            source=payment.source.public(),
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        try:
            session.flush()
        except IntegrityError as exc:
            raise Conflict(
                "A payment for this order is already being processed.",
                field="status",
                code="invalid_state",
            ) from exc
        return row

    row = await db.run(tenant, start, write=True)
    # From here on the payment row says PROCESSING. If this coroutine dies before recording an
    # outcome (crash, cancellation, an unexpected error, a failed write), reconcile_stale()
    # settles it later by asking the processor again under the same payment id.
    try:
        result = await processor.charge(_charge_request(row))
    except ProcessorUnavailable as exc:
        await _fail(db, tenant, row.id, "processing_error", None)
        raise PaymentProcessorError(
            "The payment processor failed; nothing was charged. Retry the payment."
        ) from exc
    settle = _settle(row.id, result, receipt_base, access.principal)
    paid = await db.run(tenant, settle, write=True)
    if paid is None:
        raise PaymentDeclined(
            result.message or "The payment was declined.", result.decline_code or "declined"
        )
    return paid


def _audit_payment(
    session: Session,
    paid: Payment,
    actor: Principal | None,
    action: AuditAction,
    before: dict[str, object],
    after: dict[str, object],
) -> None:
    """A payment's audit row, in the caller's transaction: the acting principal (the payer, the
    canceller) or the system, and the order, amount and currency after whatever changed."""
    audit.record(
        session,
        actor or audit.system_actor(paid.tenant_id),
        action,
        AuditEntity.PAYMENT,
        paid.id,
        before=before,
        after={**after, "orderId": paid.order_id, "amount": paid.amount, "currency": paid.currency},
    )


def _charge_request(row: Payment) -> ChargeRequest:
    """The processor request for a payment row; the payment id is the provider's idempotency
    key, so asking again (reconciliation) never charges twice."""
    return ChargeRequest(
        payment_id=str(row.id),
        amount=row.amount,
        currency=row.currency,
        source_kind=str(row.source.get("object")),
        last4=str(row.source.get("last4")),
        brand=row.source.get("brand"),
    )


def _settle(
    payment_id: uuid.UUID, result: ChargeResult, receipt_base: str, actor: Principal | None
) -> Callable[[Session], PaidOrder | None]:
    """Record the processor's answer: success → SUCCEEDED, receipt, order APPROVED, the events
    and the PAYMENT_CAPTURED audit row (by ``actor``, the system when None); decline → FAILED
    (None). A payment no longer PROCESSING is left alone."""

    def work(session: Session) -> PaidOrder | None:
        paid = session.get(Payment, payment_id)
        if paid is None or paid.status != PaymentStatus.PROCESSING:
            return None
        # Lock the order before the payment, the order every other path takes (a payer holds
        # the order while its insert waits on this payment's index entry: the other order
        # deadlocks on PostgreSQL).
        order = session.get(Order, paid.order_id, with_for_update=True)
        session.refresh(paid, with_for_update=True)
        if order is None or paid.status != PaymentStatus.PROCESSING:
            return None
        paid.processor_reference = result.reference
        paid.updated_at = utcnow()
        if not result.succeeded:
            paid.status = PaymentStatus.FAILED
            paid.failure_code = result.decline_code or "declined"
            return None
        paid.status = PaymentStatus.SUCCEEDED
        paid.receipt_id = f"rcp_{uuid7()}"
        change_status(session, order, APPROVED)
        events.publish(
            session,
            order,
            events.PAYMENT_SUCCEEDED,
            {
                "payment": {
                    "id": str(paid.id),
                    "amount": f"{paid.amount:.2f}",
                    "currency": paid.currency,
                    "source": events.event_source(paid.source),
                    "status": paid.status,
                    "createdAt": events.rfc3339(paid.created_at),
                },
                "order": events.order_snapshot(order),
                "receipt": {
                    "receiptId": paid.receipt_id,
                    "receiptUrl": f"{receipt_base}/orders/{order.id}",
                    "generatedAt": events.rfc3339(paid.updated_at),
                },
            },
        )
        _audit_payment(
            session,
            paid,
            actor,
            AuditAction.PAYMENT_CAPTURED,
            before={"status": PaymentStatus.PROCESSING, "orderStatus": PLACED},
            after={
                "status": paid.status,
                "orderStatus": order.status,
                "receiptId": paid.receipt_id,
            },
        )
        return PaidOrder(paid, order)

    return work


async def reconcile_stale(
    db: Database,
    processor: PaymentProcessor,
    receipt_base: str,
    older_than: timedelta = timedelta(minutes=5),
) -> int:
    """System job: settle payments left PROCESSING by an interrupted request, in every tenant,
    by asking the processor again (same payment id, so never a second charge). Payments whose
    processor is still unavailable stay PROCESSING for the next run."""

    def stale(session: Session) -> list[Payment]:
        return list(
            session.scalars(
                select(Payment)
                .where(
                    Payment.status == PaymentStatus.PROCESSING,
                    Payment.updated_at <= utcnow() - older_than,
                )
                .limit(50)
            )
        )

    settled = 0
    for row in await db.run_system(stale):
        try:
            result = await processor.charge(_charge_request(row))
        except ProcessorUnavailable:
            continue
        await db.run_system(_settle(row.id, result, receipt_base, None), write=True)
        settled += 1
    return settled


async def _fail(
    db: Database, tenant: str, payment_id: uuid.UUID, code: str, reference: str | None
) -> None:
    def work(session: Session) -> None:
        failed = session.get(Payment, payment_id, with_for_update=True)
        if failed is not None:
            failed.status = PaymentStatus.FAILED
            failed.failure_code = code
            failed.processor_reference = reference
            failed.updated_at = utcnow()

    await db.run(tenant, work, write=True)


async def refund_owed(
    db: Database, processor: PaymentProcessor, tenant: str | None = None,
    order_id: uuid.UUID | None = None, actor: Principal | None = None,
) -> int:  # fmt: skip
    """Refund voided payments: a succeeded charge whose order was cancelled is CANCELLED at
    once, in the cancelling transaction, and reversed here through the processor (idempotent by
    payment id). Called right after a cancellation for its order (``actor``: who cancelled),
    and by the housekeeping job for every tenant (``tenant=None``, the system as the actor) so
    that a processor outage only delays a refund. Each refund recorded writes its
    PAYMENT_REFUNDED audit row in the same transaction."""
    where = [
        Payment.status == PaymentStatus.CANCELLED,
        Payment.processor_reference.is_not(None),
        Payment.refund_reference.is_(None),
    ]
    if order_id is not None:
        where.append(Payment.order_id == order_id)

    def owed(session: Session) -> list[Payment]:
        return list(session.scalars(select(Payment).where(*where).limit(50)))

    def record(payment_id: uuid.UUID, reference: str) -> Callable[[Session], None]:
        def work(session: Session) -> None:
            paid = session.get(Payment, payment_id, with_for_update=True)
            if paid is not None and paid.refund_reference is None:
                paid.refund_reference = reference
                paid.updated_at = utcnow()
                _audit_payment(
                    session,
                    paid,
                    actor,
                    AuditAction.PAYMENT_REFUNDED,
                    before={"status": paid.status, "refunded": False},
                    after={"status": paid.status, "refunded": True, "refundReference": reference},
                )

        return work

    rows = await (db.run(tenant, owed) if tenant is not None else db.run_system(owed))
    refunded = 0
    for row in rows:
        request = RefundRequest(
            str(row.id), row.processor_reference or "", row.amount, row.currency
        )
        try:
            reference = await processor.refund(request)
        except ProcessorUnavailable:
            continue
        work = record(row.id, reference)
        await (
            db.run(tenant, work, write=True)
            if tenant is not None
            else db.run_system(work, write=True)
        )
        refunded += 1
    return refunded
