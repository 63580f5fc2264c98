"""Order operations (tags Store and Payments): create, read, cancel, fulfil, pay."""

from __future__ import annotations

import uuid
from typing import Any

from connexion import request
from starlette.responses import Response

from auth.principals import client_address
from handlers._access import caller, order_access
from handlers._context import api_base, container, json_response, no_content, principal
from handlers._idempotency import idempotent
from schemas.orders import dump_order, dump_payment, load_order, load_payment


async def create_order(body: dict[str, Any]) -> Response:
    who = await caller()
    order = load_order(body)

    async def produce() -> Response:
        view = await container().orders.create(who, order, client_address(request.scope))
        location = f"{api_base()}/orders/{view.order.id}"
        return json_response(dump_order(view, api_base()), 201, {"Location": location})

    return await idempotent("createOrder", body, who, produce)


async def get_order(id: uuid.UUID) -> Response:  # noqa: A002 - the spec names it id
    view = await container().orders.get(await order_access(), uuid.UUID(str(id)))
    return json_response(dump_order(view, api_base()))


async def cancel_order(id: uuid.UUID) -> Response:  # noqa: A002
    await container().orders.cancel(await order_access(), uuid.UUID(str(id)))
    return no_content()


async def update_order_status(id: uuid.UUID, body: dict[str, Any]) -> Response:  # noqa: A002
    view = await container().orders.advance(principal(), uuid.UUID(str(id)), body["status"])
    return json_response(dump_order(view, api_base()))


async def pay_order(id: uuid.UUID, body: dict[str, Any]) -> Response:  # noqa: A002
    access = await order_access()
    order_id = uuid.UUID(str(id))
    payment = load_payment(body)

    async def produce() -> Response:
        paid = await container().orders.pay(access, order_id, payment)
        return json_response(dump_payment(paid.payment, api_base()))

    return await idempotent(
        "payOrder", [str(order_id), body], access.principal, produce, access.guest_token
    )
