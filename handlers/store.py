"""Store operations (tag Store): inventory."""

from __future__ import annotations

from starlette.responses import Response

from handlers._context import api_base, container, json_response, principal
from schemas.inventory import dump_inventories, dump_inventory


async def get_inventory() -> Response:
    inventory = await container().inventory.get(principal())
    return json_response(dump_inventory(inventory))


async def list_inventories(page: int = 1, limit: int = 20) -> Response:
    rows = await container().inventory.by_species(principal(), page, limit)
    return json_response(dump_inventories(rows, api_base()))
