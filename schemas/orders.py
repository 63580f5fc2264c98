"""Order → #/components/schemas/Order; Payment → OrderPayment (with Receipt)."""

from __future__ import annotations

from typing import Any

from models import Order, Payment
from schemas.common import timestamp
from services.orders.orders import PLACED, OrderView
from services.shared.events import order_snapshot


def dump_receipt(payment: Payment, api_base: str) -> dict[str, Any] | None:
    if not payment.receipt_id:
        return None
    return {
        "receiptId": payment.receipt_id,
        "receiptUrl": f"{api_base}/orders/{payment.order_id}",
        "generatedAt": timestamp(payment.updated_at),
    }


def dump_order(view: OrderView, api_base: str) -> dict[str, Any]:
    order: Order = view.order
    url = f"{api_base}/orders/{order.id}"
    links = {"self": url, "pet": f"{api_base}/pets/{order.pet_id}"}
    data: dict[str, Any] = {
        **order_snapshot(order),  # the fields webhook payloads carry too
        "tenantId": order.tenant_id or None,
        "links": links,
    }
    if order.status == PLACED:
        links["payment"] = f"{url}/payment"
        if order.expires_at is not None:
            data["expiresAt"] = timestamp(order.expires_at)
    if view.guest_token:
        data["guestToken"] = view.guest_token
    receipt = dump_receipt(view.payment, api_base) if view.payment else None
    if receipt:
        data["receipt"] = receipt
    return data


def dump_payment(payment: Payment, api_base: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(payment.id),
        "orderId": str(payment.order_id),
        "amount": f"{payment.amount:.2f}",
        "currency": payment.currency,
        "source": dict(payment.source),
        "status": payment.status,
        "createdAt": timestamp(payment.created_at),
    }
    receipt = dump_receipt(payment, api_base)
    if receipt:
        data["receipt"] = receipt
    return data
