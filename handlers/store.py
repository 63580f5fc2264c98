"""Store operations (tag Store): inventory."""

from __future__ import annotations

from starlette.responses import Response

from handlers._context import api_base, container, json_response, principal
from schemas.inventory import dump_inventories, dump_inventory
from services import inventory as service


async def get_inventory() -> Response:
    inventory = await service.get_inventory(container().db, principal().tenant)
    return json_response(dump_inventory(inventory))


async def list_inventories(page: int = 1, limit: int = 20) -> Response:
    rows = await service.list_inventories(container().db, principal().tenant, page, limit)
    return json_response(dump_inventories(rows, api_base()))
