"""Order → #/components/schemas/Order; Payment → OrderPayment (with Receipt); a Pay Order body
→ PaymentInput."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from models import Order, Payment
from schemas.common import timestamp
from services.orders.orders import PLACED, OrderView
from services.orders.payment_sources import BankAccount, Card, PaymentSource
from services.orders.payments import PaymentInput
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


_ADDRESS = ("addressLine1", "addressLine2", "addressCity", "addressState", "addressCountry",
            "addressPostCode")  # fmt: skip


def _load_source(data: dict[str, Any]) -> PaymentSource:
    if data["object"] == "card":
        return Card(
            number=data["number"],
            cvc=data["cvc"],
            exp_month=data["expMonth"],
            exp_year=data["expYear"],
            name=data.get("name"),
            address={k: data[k] for k in _ADDRESS if k in data},
        )
    return BankAccount(
        account_holder_name=data["accountHolderName"],
        country=data["country"],
        account_holder_type=data.get("accountHolderType", "individual"),
        iban=data.get("iban"),
        routing_number=data.get("routingNumber"),
        account_number=data.get("accountNumber"),
    )


def load_payment(body: dict[str, Any]) -> PaymentInput:
    return PaymentInput(Decimal(body["amount"]), body["currency"], _load_source(body["source"]))
