"""Order operations (tags Store and Payments): create, read, cancel, fulfil, pay."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from connexion import request
from starlette.responses import Response

from handlers._context import api_base, container, json_response, no_content, principal
from handlers._idempotency import idempotent
from schemas.orders import dump_order, dump_payment
from services import orders as service
from services import payments
from services.errors import AuthenticationFailed
from services.payment_sources import BankAccount, Card, PaymentSource
from services.principal import Principal

_ADDRESS = ("addressLine1", "addressLine2", "addressCity", "addressState", "addressCountry",
            "addressPostCode")  # fmt: skip


def _caller() -> Principal:
    """Order operations allow callers without a bearer token, but a token that is sent must be
    valid: Connexion's optional security would otherwise quietly treat a bad token as none."""
    who = principal()
    if not who.is_authenticated and request.headers.get("authorization"):
        raise AuthenticationFailed("The bearer token is invalid, expired or lacks write:orders.")
    return who


def order_access() -> service.OrderAccess:
    """Owner, admin or guest: a bearer token, or the order's X-Order-Token."""
    who = _caller()
    guest_token = request.headers.get("x-order-token")
    if not who.is_authenticated and not guest_token:
        raise AuthenticationFailed("Send a bearer token, or the order's X-Order-Token.")
    return service.OrderAccess(who, guest_token)


async def create_order(body: dict[str, Any]) -> Response:
    who = _caller()

    async def produce() -> Response:
        view = await service.create_order(
            container().db, who, uuid.UUID(str(body["petId"])), container().settings.order_hold
        )
        location = f"{api_base()}/orders/{view.order.id}"
        return json_response(dump_order(view, api_base()), 201, {"Location": location})

    return await idempotent("createOrder", body, who, produce)


async def get_order(id: uuid.UUID) -> Response:  # noqa: A002 - the spec names it id
    view = await service.get_order(container().db, order_access(), uuid.UUID(str(id)))
    return json_response(dump_order(view, api_base()))


async def cancel_order(id: uuid.UUID) -> Response:  # noqa: A002
    await service.cancel_order(container().db, order_access(), uuid.UUID(str(id)))
    return no_content()


async def update_order_status(id: uuid.UUID, body: dict[str, Any]) -> Response:  # noqa: A002
    view = await service.advance_order(
        container().db, principal(), uuid.UUID(str(id)), body["status"]
    )
    return json_response(dump_order(view, api_base()))


def _source(data: dict[str, Any]) -> PaymentSource:
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


async def pay_order(id: uuid.UUID, body: dict[str, Any]) -> Response:  # noqa: A002
    access = order_access()
    order_id = uuid.UUID(str(id))
    payment = payments.PaymentInput(
        Decimal(body["amount"]), body["currency"], _source(body["source"])
    )

    async def produce() -> Response:
        paid = await payments.pay_order(
            container().db, container().processor, access, order_id, payment, api_base()
        )
        return json_response(dump_payment(paid.payment, api_base()))

    return await idempotent(
        "payOrder", [str(order_id), body], access.principal, produce, access.guest_token
    )
