"""Connexion ``x-tokenInfoFunc`` for the ``oauth2`` scheme: the claims of a valid token with the
account's current role and scopes (auth.principals.Authenticator.current_claims); Connexion then
checks the operation's scopes against them. None (→ 401) for an invalid token or a gone account."""

from __future__ import annotations

from typing import Any


async def token_info(token: str, request: Any = None) -> dict[str, Any] | None:
    container = request.scope.get("petstore") if request is not None else None
    if container is None:
        return None
    claims: dict[str, Any] | None = await container.auth.current_claims(token, request.scope)
    return claims
