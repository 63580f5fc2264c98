"""Webhook operations (tag Webhooks) and the Callback Example (tag Store)."""

from __future__ import annotations

import uuid
from typing import Any

from connexion import request as connexion_request
from starlette.responses import Response

from auth.principals import client_address
from handlers._access import order_access
from handlers._context import api_base, container, json_response, no_content, principal
from schemas.webhooks import dump_deliveries, dump_delivery, dump_subscription, dump_subscriptions
from services.shared.pagination import PageRequest
from services.webhooks import subscriptions as service


async def create_webhook(body: dict[str, Any]) -> Response:
    created = await container().webhooks.create(
        principal(), body["url"], body["events"], body.get("description")
    )
    data = dump_subscription(created.subscription, api_base(), created.secret)
    return json_response(data, 201, {"Location": data["links"]["self"]})


async def list_webhooks(page: int | None = None, limit: int | None = None) -> Response:
    found = await container().webhooks.list(principal(), PageRequest.of(page, limit))
    return json_response(dump_subscriptions(found, api_base(), {}))


async def get_webhook(id: uuid.UUID) -> Response:  # noqa: A002 - the spec names it id
    found = await container().webhooks.get(principal(), uuid.UUID(str(id)))
    return json_response(dump_subscription(found, api_base()))


async def delete_webhook(id: uuid.UUID) -> Response:  # noqa: A002
    await container().webhooks.delete(principal(), uuid.UUID(str(id)))
    return no_content()


async def list_webhook_deliveries(
    id: uuid.UUID,  # noqa: A002
    page: int | None = None,
    limit: int | None = None,
) -> Response:
    sub_id = uuid.UUID(str(id))
    paging = PageRequest.of(page, limit)
    found = await container().webhooks.deliveries(principal(), sub_id, paging)
    return json_response(dump_deliveries(found, api_base(), f"/webhooks/{sub_id}/deliveries", {}))


async def redeliver_webhook(id: uuid.UUID, deliveryId: uuid.UUID) -> Response:  # noqa: A002, N803
    view = await container().webhooks.redeliver(
        principal(), uuid.UUID(str(id)), uuid.UUID(str(deliveryId))
    )
    return json_response(dump_delivery(view), 202)


async def callback_example(id: uuid.UUID, body: dict[str, Any]) -> Response:  # noqa: A002
    request = service.CallbackRequest(
        body["callbackUrl"], body["amount"], body["currency"], body["timestamp"]
    )
    queued = await container().webhooks.callback(
        await order_access(), uuid.UUID(str(id)), request, client_address(connexion_request.scope)
    )
    return json_response(
        {"message": "Callback enqueued", "callbackId": str(queued.delivery_id),
         "secret": queued.secret},
        201,
    )  # fmt: skip
