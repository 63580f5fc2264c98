"""The Admin API module (spec/admin.yaml, served under /v1/admin): load, call one service, dump.
Every service checks the admin scope itself; the spec states it for clients."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.responses import Response

from handlers._context import api_base, container, json_response, principal
from schemas.admin import (
    dump_admin_orders,
    dump_admin_user,
    dump_admin_users,
    dump_audit_log,
    dump_audit_logs,
    dump_dashboard,
    load_audit_filters,
    load_force_cancel,
    load_order_query,
    load_period,
    load_status_change,
    load_user_query,
)
from schemas.orders import dump_order
from services.admin.audit import AuditQuery
from services.shared.pagination import PageRequest
from settings import ADMIN_PREFIX, API_PREFIX

ADMIN_PATH = ADMIN_PREFIX.removeprefix(API_PREFIX)  # the module's base below the API's


def _query(params: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """The operation's query parameters (Connexion also passes ``user`` and ``token_info`` to a
    handler that takes ``**params``)."""
    return {name: params[name] for name in names if params.get(name) is not None}


USER_QUERY = ("q", "status", "role", "sort", "page", "limit")
ORDER_QUERY = ("status", "userId", "petId", "from", "to", "page", "limit")
AUDIT_QUERY = ("userId", "action", "entityType", "entityId", "from", "to", "page", "limit")


def _bases() -> tuple[str, str]:
    base = api_base()
    return base + ADMIN_PATH, base


async def get_dashboard_stats(**params: Any) -> Response:
    period = load_period(_query(params, ("from", "to")))
    stats = await container().admin.dashboard(principal(), period)
    return json_response(dump_dashboard(stats))


async def list_users(**params: Any) -> Response:
    params = _query(params, USER_QUERY)
    paging = PageRequest.of(params.get("page"), params.get("limit"))
    page = await container().admin.users.list(principal(), load_user_query(params), paging)
    return json_response(dump_admin_users(page, *_bases(), params))


async def get_user_details(id: uuid.UUID) -> Response:  # noqa: A002 - the spec names it id
    managed = await container().admin.users.get(principal(), uuid.UUID(str(id)))
    return json_response(dump_admin_user(managed, *_bases()))


async def update_user_status(id: uuid.UUID, body: dict[str, Any]) -> Response:  # noqa: A002
    change = load_status_change(body)
    managed = await container().admin.users.set_status(principal(), uuid.UUID(str(id)), change)
    return json_response(dump_admin_user(managed, *_bases()))


async def list_all_orders(**params: Any) -> Response:
    params = _query(params, ORDER_QUERY)
    paging = PageRequest.of(params.get("page"), params.get("limit"))
    page = await container().admin.orders.list(principal(), load_order_query(params), paging)
    return json_response(dump_admin_orders(page, *_bases(), params))


async def force_cancel_order(id: uuid.UUID, body: dict[str, Any]) -> Response:  # noqa: A002
    cancel = load_force_cancel(body)
    view = await container().admin.orders.force_cancel(principal(), uuid.UUID(str(id)), cancel)
    return json_response(dump_order(view, api_base()))


async def get_audit_log_details(id: uuid.UUID) -> Response:  # noqa: A002
    entry = await container().admin.audit.get(principal(), uuid.UUID(str(id)))
    return json_response(dump_audit_log(entry))


async def list_audit_logs(**params: Any) -> Response:
    params = _query(params, AUDIT_QUERY)
    query = AuditQuery(**load_audit_filters(params))
    paging = PageRequest.of(params.get("page"), params.get("limit"))
    page = await container().admin.audit.list(principal(), query, paging)
    return json_response(dump_audit_logs(page, _bases()[0], params))
