"""Store operations (tag Store): inventory."""

from __future__ import annotations

from starlette.responses import Response

from handlers._conditional import PRIVATE, cache_headers, derived_etag
from handlers._context import api_base, container, json_response, matches, not_modified, principal
from schemas.inventory import dump_inventories, dump_inventory
from services.catalogue.cached import INVENTORY_KEY
from services.shared.pagination import PageRequest


async def get_inventory() -> Response:
    """ETag from the tenant's version (no query for a 304); the scope is checked first."""
    service = container().inventory
    caller = principal()
    version = await service.cache.version(caller.tenant)
    tag = None if version is None else derived_etag(caller.tenant, version, INVENTORY_KEY, "")
    headers = cache_headers(tag, PRIVATE)
    if tag is not None and matches(tag):
        service.authorize(caller)  # a 304 tells the tenant's state: same rule as the 200
        return not_modified(headers)
    inventory = await service.get(caller, at=version)
    return json_response(dump_inventory(inventory), headers=headers)


async def list_inventories(page: int | None = None, limit: int | None = None) -> Response:
    rows = await container().inventory.by_species(principal(), PageRequest.of(page, limit))
    return json_response(dump_inventories(rows, api_base()))
