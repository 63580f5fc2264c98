"""Per-request helpers shared by the handlers: container, tenant, principal, JSON responses."""

from __future__ import annotations

from typing import Any

import orjson
from connexion import request
from connexion.context import context
from starlette.responses import Response

from auth.principals import bind_tenant, with_origin
from auth.tokens import principal_from_claims
from handlers._conditional import tag_matches
from services.shared.principal import Principal, anonymous
from web import urls
from web.container import SCOPE_KEY, Container

JSON = "application/json"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
"""On every response that carries a token (log in, register): no cache may keep it."""


def container() -> Container:
    value: Container = request.scope[SCOPE_KEY]
    return value


def header_tenant() -> str:
    return (request.headers.get("x-tenant-id") or "").lower()


def accepted_claims() -> dict[str, Any]:
    """The claims Connexion's security check accepted for this operation
    (auth.security.token_info); empty when no token was sent."""
    claims: dict[str, Any] | None = context.get("token_info")
    return claims or {}


def principal() -> Principal:
    """The caller, from the accepted claims, bound to the tenant X-Tenant-ID names, with the
    request's origin (client address, user agent) for the audit log."""
    claims = accepted_claims()
    if not claims:
        return with_origin(anonymous(header_tenant()), request.scope)
    return with_origin(bind_tenant(principal_from_claims(claims), header_tenant()), request.scope)


async def public_caller() -> Principal:
    """The caller of an operation open to everyone (``security: []``): anonymous without a
    credential; a credential that is sent must be valid (401 otherwise) and is then the caller,
    in its own tenant (auth.principals, as over every protocol)."""
    header = request.headers.get("authorization")
    if not header:
        return with_origin(anonymous(header_tenant()), request.scope)
    return await container().auth.principal(header, header_tenant(), request.scope)


def api_base() -> str:
    """The base of the links in this response (web.urls.scope_api_base)."""
    scope = request.scope
    return urls.scope_api_base(scope[SCOPE_KEY].settings, scope)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type=JSON, headers=headers)


def matches(tag: str) -> bool:
    """Whether If-None-Match names ``tag`` (weak comparison, RFC 9110 13.1.2) or is ``*``."""
    return tag_matches(request.headers.get("if-none-match"), tag)


def not_modified(headers: dict[str, str]) -> Response:
    """304: the validator and caching headers a 200 would carry, no body."""
    return Response(status_code=304, headers=headers)


def no_content() -> Response:
    return Response(status_code=204)
