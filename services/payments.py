"""Pay Order: charge a card or bank account for an order, synchronously.

Rules: the caller must be able to see the order (owner, guest token, admin); the order must be
PLACED; amount and currency must equal the order's. The charge runs outside any database
transaction: a PROCESSING payment row is written first (at most one per order, enforced by the
database), the processor is called, then the outcome is written. Success: payment SUCCEEDED with
a receipt, order APPROVED. Decline: payment FAILED, order stays PLACED (retry with another
source). Processor failure: payment FAILED, order stays PLACED (retry)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import Order, Payment
from models.base import utcnow, uuid7
from models.database import Database
from services import events
from services.errors import (
    Conflict,
    FieldError,
    InvalidInput,
    PaymentDeclined,
    PaymentProcessorError,
)
from services.orders import APPROVED, CANCELLED, PLACED, OrderAccess, change_status, load_visible
from services.payment_sources import PaymentSource
from services.processor import ChargeRequest, PaymentProcessor, ProcessorUnavailable


@dataclass(frozen=True)
class PaymentInput:
    amount: Decimal
    currency: str
    source: PaymentSource


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
    PaymentDeclined, PaymentProcessorError. ``receipt_base`` is the API base URL for the receipt
    link in the ``payment.succeeded`` event."""
    payment.source.validate(date.today())
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
            status="PROCESSING",
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
    request = ChargeRequest(
        payment_id=str(row.id),
        amount=payment.amount,
        currency=payment.currency,
        source_kind=payment.source.kind,
        last4=payment.source.last4,
        brand=row.source.get("brand"),
    )
    try:
        result = await processor.charge(request)
    except ProcessorUnavailable as exc:
        await _fail(db, tenant, row.id, "processing_error", None)
        raise PaymentProcessorError(
            "The payment processor failed; nothing was charged. Retry the payment."
        ) from exc
    if not result.succeeded:
        await _fail(db, tenant, row.id, result.decline_code or "declined", result.reference)
        raise PaymentDeclined(
            result.message or "The payment was declined.", result.decline_code or "declined"
        )

    def succeed(session: Session) -> PaidOrder:
        paid = session.get(Payment, row.id, with_for_update=True)
        order = session.get(Order, row.order_id, with_for_update=True)
        if paid is None or order is None:  # rows are never deleted while PROCESSING
            raise RuntimeError("payment or order vanished while processing")
        paid.status = "SUCCEEDED"
        paid.processor_reference = result.reference
        paid.receipt_id = f"rcp_{uuid7()}"
        paid.updated_at = utcnow()
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
                    "source": paid.source,
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
        return PaidOrder(paid, order)

    return await db.run(tenant, succeed, write=True)


async def _fail(
    db: Database, tenant: str, payment_id: uuid.UUID, code: str, reference: str | None
) -> None:
    def work(session: Session) -> None:
        failed = session.get(Payment, payment_id, with_for_update=True)
        if failed is not None:
            failed.status = "FAILED"
            failed.failure_code = code
            failed.processor_reference = reference
            failed.updated_at = utcnow()

    await db.run(tenant, work, write=True)
