"""Order → #/components/schemas/Order; Payment → OrderPayment (with Receipt); a Pay Order body
→ PaymentInput."""

from __future__ import annotations

from typing import Any

from models import Order, Payment
from schemas.common import timestamp
from schemas.loading import Int, LoadSchema, Money, Obj, Str, load
from services.orders.orders import PLACED, NewOrder, OrderView
from services.orders.payment_sources import BankAccount, Card, PaymentSource
from services.orders.payments import PaymentInput
from services.shared.errors import FieldError, InvalidInput
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


class NewOrderSchema(LoadSchema):
    """#/components/schemas/Order in a request: only ``petId`` is read."""

    pet_id = Str("petId", required=True)


class CardSchema(LoadSchema):
    """#/components/schemas/BankCard (input side)."""

    number = Str(required=True)
    cvc = Str(required=True)
    exp_month = Int("expMonth", required=True)
    exp_year = Int("expYear", required=True)
    name = Str()
    address_line1 = Str("addressLine1")
    address_line2 = Str("addressLine2")
    address_city = Str("addressCity")
    address_state = Str("addressState")
    address_country = Str("addressCountry")
    address_post_code = Str("addressPostCode")


class BankAccountSchema(LoadSchema):
    """#/components/schemas/BankAccount (input side)."""

    account_holder_name = Str("accountHolderName", required=True)
    country = Str(required=True)
    account_holder_type = Str("accountHolderType")
    iban = Str()
    routing_number = Str("routingNumber")
    account_number = Str("accountNumber")


class PaymentSchema(LoadSchema):
    """#/components/schemas/OrderPayment in a request (Pay Order); ``source`` is loaded by the
    schema its ``object`` names."""

    amount = Money(required=True)
    currency = Str(required=True)
    source = Obj(required=True)


_ORDER, _CARD, _BANK, _PAYMENT = (
    NewOrderSchema(),
    CardSchema(),
    BankAccountSchema(),
    PaymentSchema(),
)
_ADDRESS = {
    "address_line1": "addressLine1",
    "address_line2": "addressLine2",
    "address_city": "addressCity",
    "address_state": "addressState",
    "address_country": "addressCountry",
    "address_post_code": "addressPostCode",
}


def load_order(body: dict[str, Any]) -> NewOrder:
    """Place Order: the pet to adopt. Raises InvalidInput (``petId``)."""
    return NewOrder(**load(_ORDER, body))


def _load_source(data: dict[str, Any]) -> PaymentSource:
    kind = data.get("object")
    if kind == "card":
        values = load(_CARD, data, "source.")
        address = {wire: values.pop(key) for key, wire in _ADDRESS.items() if key in values}
        return Card(**values, address=address)
    if kind == "bank_account":
        return BankAccount(**load(_BANK, data, "source."))
    raise InvalidInput([FieldError("source.object", "must be card or bank_account", "enum")])


def load_payment(body: dict[str, Any]) -> PaymentInput:
    """Pay Order. Raises InvalidInput naming every bad field (``amount``, ``source.cvc``, ...);
    never echoes a card number or CVC."""
    values = load(_PAYMENT, body)
    return PaymentInput(values["amount"], values["currency"], _load_source(values["source"]))
