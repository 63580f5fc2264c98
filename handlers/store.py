"""Store operations (tag Store): inventory."""

from __future__ import annotations

from starlette.responses import Response

from handlers._context import api_base, container, json_response, principal
from schemas.inventory import dump_inventories, dump_inventory
from services.shared.pagination import PageRequest


async def get_inventory() -> Response:
    inventory = await container().inventory.get(principal())
    return json_response(dump_inventory(inventory))


async def list_inventories(page: int | None = None, limit: int | None = None) -> Response:
    rows = await container().inventory.by_species(principal(), PageRequest.of(page, limit))
    return json_response(dump_inventories(rows, api_base()))
