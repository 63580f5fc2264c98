"""Resolvers: load the input with the REST load functions, call one service method, shape the
result with the REST dump functions (GraphQL fields carry the REST component names)."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from ariadne import MutationType, ObjectType, QueryType
from graphql import GraphQLResolveInfo

from auth.principals import client_address
from protocols.graphql_api.context import Context
from schemas.inventory import dump_inventory
from schemas.orders import dump_order, dump_payment, load_order, load_payment
from schemas.pets import dump_pet, load_pet, load_pet_query
from schemas.users import dump_user
from services.shared.errors import FieldError, InvalidInput
from services.shared.pagination import (
    DEFAULT_LIMIT,
    MAX_PAGE,
    MAX_PAGE_SIZE,
    Page,
    PageRequest,
)

MAX_OFFSET = MAX_PAGE * MAX_PAGE_SIZE  # cursors beyond the deepest page are not ours

query = QueryType()
mutation = MutationType()
order = ObjectType("Order")
Info = GraphQLResolveInfo[Context]


def _ctx(info: Info) -> Context:
    context: Context = info.context
    return context


def _uuid(value: Any, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidInput([FieldError(name, "must be a UUID", "format")]) from None


# --- Relay-style connections over the services' page-based lists --------------------------


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _offset(after: str | None) -> int:
    """The position after the ``after`` cursor (0 without one)."""
    if after is None:
        return 0
    try:
        kind, _, value = base64.urlsafe_b64decode(after.encode()).decode().partition(":")
        if kind == "offset" and value.isascii() and value.isdigit() and int(value) < MAX_OFFSET:
            return int(value) + 1
    except ValueError:
        pass
    raise InvalidInput([FieldError("after", "not a cursor from this API", "format")])


def _window(first: int, start: int) -> tuple[int, int]:
    """(page, limit) of the service's page that holds items [start, start + first): the page
    size ``first`` when the window is aligned (clients paging with endCursor), else the
    smallest size up to MAX_PAGE_SIZE that holds the window on one page. When none does (a
    large unaligned window), the MAX_PAGE_SIZE page holding ``start``: fewer than ``first``
    edges come back and ``hasNextPage`` says there are more, as Relay allows."""
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise InvalidInput([FieldError("first", f"must be between 1 and {MAX_PAGE_SIZE}", "range")])
    for limit in range(first, MAX_PAGE_SIZE + 1):
        if start // limit == (start + first - 1) // limit:
            return start // limit + 1, limit
    return start // MAX_PAGE_SIZE + 1, MAX_PAGE_SIZE


def _connection(
    page: Page[Any], first: int, start: int, nodes: list[dict[str, Any]]
) -> dict[str, Any]:
    skip = start - (page.page - 1) * page.limit
    edges = [
        {"cursor": _cursor(start + i), "node": node}
        for i, node in enumerate(nodes[skip : skip + first])
    ]
    return {
        "edges": edges,
        "totalCount": page.total,
        "pageInfo": {
            "hasNextPage": start + len(edges) < page.total,
            "hasPreviousPage": start > 0,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }


# --- Queries ---------------------------------------------------------------------------------


@query.field("pet")
async def resolve_pet(_: None, info: Info, id: str) -> dict[str, Any]:
    ctx = _ctx(info)
    pet = await ctx.container.pets.get(ctx.principal, _uuid(id, "id"))
    return dump_pet(pet, ctx.api_base)


@query.field("pets")
async def resolve_pets(
    _: None,
    info: Info,
    first: int | None = DEFAULT_LIMIT,
    after: str | None = None,
    filter: dict[str, Any] | None = None,
) -> dict[str, Any]:
    ctx = _ctx(info)
    first = DEFAULT_LIMIT if first is None else first  # null: the default
    start = _offset(after)
    page_number, limit = _window(first, start)
    params = {**(filter or {}), "page": page_number, "limit": limit}
    page = await ctx.container.pets.list(ctx.principal, load_pet_query(params))
    nodes = [dump_pet(p, ctx.api_base) for p in page.items]
    return _connection(page, first, start, nodes)


@query.field("order")
async def resolve_order(_: None, info: Info, id: str) -> dict[str, Any]:
    ctx = _ctx(info)
    view = await ctx.container.orders.get(ctx.order_access(), _uuid(id, "id"))
    return dump_order(view, ctx.api_base)


@query.field("myOrders")
async def resolve_my_orders(
    _: None, info: Info, first: int | None = DEFAULT_LIMIT, after: str | None = None
) -> dict[str, Any]:
    ctx = _ctx(info)
    first = DEFAULT_LIMIT if first is None else first  # null: the default
    start = _offset(after)
    page_number, limit = _window(first, start)
    page = await ctx.container.orders.mine(ctx.principal, PageRequest(page_number, limit))
    nodes = [dump_order(view, ctx.api_base) for view in page.items]
    return _connection(page, first, start, nodes)


@query.field("inventory")
async def resolve_inventory(_: None, info: Info) -> dict[str, Any]:
    ctx = _ctx(info)
    data = dump_inventory(await ctx.container.inventory.get(ctx.principal))
    data["bySpecies"] = [{"species": s, **counts} for s, counts in data["bySpecies"].items()]
    return data


@query.field("me")
async def resolve_me(_: None, info: Info) -> dict[str, Any]:
    ctx = _ctx(info)
    return dump_user(await ctx.container.users.me(ctx.principal), ctx.api_base)


@order.field("pet")
async def resolve_order_pet(parent: dict[str, Any], info: Info) -> dict[str, Any] | None:
    ctx = _ctx(info)
    pet = await ctx.pets.load(uuid.UUID(parent["petId"]))
    return dump_pet(pet, ctx.api_base) if pet is not None else None


# --- Mutations -------------------------------------------------------------------------------


@mutation.field("createPet")
async def resolve_create_pet(_: None, info: Info, input: dict[str, Any]) -> dict[str, Any]:
    ctx = _ctx(info)
    pet = await ctx.container.pets.create(ctx.principal, load_pet(input))
    return dump_pet(pet, ctx.api_base)


@mutation.field("updatePet")
async def resolve_update_pet(
    _: None,
    info: Info,
    id: str,
    input: dict[str, Any],
) -> dict[str, Any]:
    ctx = _ctx(info)
    pet = await ctx.container.pets.replace(ctx.principal, _uuid(id, "id"), load_pet(input))
    return dump_pet(pet, ctx.api_base)


@mutation.field("deletePet")
async def resolve_delete_pet(_: None, info: Info, id: str) -> str:
    ctx = _ctx(info)
    pet_id = _uuid(id, "id")
    await ctx.container.pets.delete(ctx.principal, pet_id)
    return str(pet_id)


@mutation.field("createOrder")
async def resolve_create_order(_: None, info: Info, input: dict[str, Any]) -> dict[str, Any]:
    ctx = _ctx(info)
    view = await ctx.container.orders.create(
        ctx.principal, load_order(input), client_address(ctx.request.scope)
    )
    return dump_order(view, ctx.api_base)


@mutation.field("cancelOrder")
async def resolve_cancel_order(_: None, info: Info, id: str) -> dict[str, Any]:
    ctx = _ctx(info)
    view = await ctx.container.orders.cancel(ctx.order_access(), _uuid(id, "id"))
    return dump_order(view, ctx.api_base)


_SOURCE_OBJECTS = {"card": "card", "bankAccount": "bank_account"}


@mutation.field("payOrder")
async def resolve_pay_order(
    _: None,
    info: Info,
    id: str,
    input: dict[str, Any],
) -> dict[str, Any]:
    """The source is a oneOf input (card or bankAccount); REST tells them apart by ``object``."""
    ctx = _ctx(info)
    [(kind, source)] = input["source"].items()
    body = {**input, "source": {"object": _SOURCE_OBJECTS[kind], **source}}
    paid = await ctx.container.orders.pay(ctx.order_access(), _uuid(id, "id"), load_payment(body))
    return dump_payment(paid.payment, ctx.api_base)
