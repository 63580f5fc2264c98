"""Connexion's security functions for the two schemes every secured operation accepts (either
one: ``security: [{oauth2: [scopes]}, {bearerAuth: []}]``), both over the same token and the
same checks (auth.principals.Authenticator.current_claims: signature, issuer, expiry, the
account's current role, status and token version, logout).

- ``token_info`` (``x-tokenInfoFunc`` of ``oauth2``): the claims; Connexion then checks the
  operation's scopes against them (403 ``insufficient_scope`` when one is missing).
- ``bearer_info`` (``x-bearerInfoFunc`` of ``bearerAuth``): the claims, provided they carry the
  scopes the operation's ``oauth2`` alternative lists. OpenAPI 3.0 lets only OAuth 2.0 schemes
  list scopes, and Connexion tries the alternatives in order and admits the first that passes:
  without this check, a valid token lacking the scope would get past ``oauth2`` by way of
  ``bearerAuth``. So both alternatives answer alike: 401 for an invalid token, 403 with the
  same ``WWW-Authenticate: ... error="insufficient_scope"`` for a missing scope.

None (→ 401) for an invalid token or a gone account."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from connexion.exceptions import OAuthScopeProblem

log = logging.getLogger("petstore.security")

OAUTH2 = "oauth2"
BEARER = "bearerAuth"

OperationScopes = Mapping[tuple[str, str], list[str]]
"""(API base path, operationId) → the scopes of the operation's ``oauth2`` alternative."""


def bearer_scopes(operation: Mapping[str, Any], default: Any = None) -> list[str] | None:
    """The scopes ``bearerAuth`` requires of ``operation`` (those of its ``oauth2``
    alternative; [] when it has none), or None when it does not accept ``bearerAuth``.
    ``default``: the document's top-level ``security``."""
    requirements = operation.get("security", default) or []
    if not any(BEARER in requirement for requirement in requirements):
        return None
    scopes: list[str] = next((r[OAUTH2] for r in requirements if OAUTH2 in r), [])
    return list(scopes)


def routed_operation_id(operation: Mapping[str, Any]) -> str:
    """The id Connexion's router puts in the ASGI scope for ``operation`` (its default
    Resolver.resolve_operation_id: prefixed with ``x-openapi-router-controller`` if any)."""
    controller = operation.get("x-openapi-router-controller")
    return (
        f"{controller}.{operation['operationId']}" if controller else str(operation["operationId"])
    )


async def token_info(token: str, request: Any = None) -> dict[str, Any] | None:
    container = request.scope.get("petstore") if request is not None else None
    if container is None:
        return None
    claims: dict[str, Any] | None = await container.auth.current_claims(token, request.scope)
    return claims


async def bearer_info(token: str, request: Any = None) -> dict[str, Any] | None:
    claims = await token_info(token, request)
    if claims is None:
        return None
    routing = request.scope.get("extensions", {}).get("connexion_routing", {})
    where = (routing.get("api_base_path"), routing.get("operation_id"))
    required = request.scope["petstore"].operation_scopes.get(where)
    if required is None:  # fail closed: an operation this table does not know
        log.error("bearerAuth on an operation without a scope entry: %s", where)
        return None
    granted = str(claims.get("scope", ""))
    if not set(required) <= set(granted.split()):
        raise OAuthScopeProblem(token_scopes=granted, required_scopes=required)  # type: ignore[arg-type]
    return claims
