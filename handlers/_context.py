"""Per-request helpers shared by the handlers: container, tenant, principal, JSON responses."""

from __future__ import annotations

from typing import Any

import orjson
from connexion import request
from connexion.context import context
from starlette.responses import Response

from auth.principals import bind_tenant
from auth.tokens import principal_from_claims
from services.shared.principal import Principal, anonymous
from settings import API_PREFIX
from web.container import SCOPE_KEY, Container

JSON = "application/json"


def container() -> Container:
    value: Container = request.scope[SCOPE_KEY]
    return value


def header_tenant() -> str:
    return (request.headers.get("x-tenant-id") or "").lower()


def principal() -> Principal:
    """The caller, from the claims Connexion's security check accepted for this operation
    (auth.security.token_info), bound to the tenant X-Tenant-ID names."""
    claims = context.get("token_info")
    if not claims:
        return anonymous(header_tenant())
    return bind_tenant(principal_from_claims(claims), header_tenant())


def api_base() -> str:
    """Base of the URLs the API hands out: PETSTORE_PUBLIC_URL when set (recommended behind a
    proxy or cache), else the request's scheme and Host (syntax checked by web.middleware)."""
    public = container().settings.public_url
    if public:
        return f"{public}{API_PREFIX}"
    url = request.url
    return f"{url.scheme}://{url.netloc}{API_PREFIX}"


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type=JSON, headers=headers)


def no_content() -> Response:
    return Response(status_code=204)
