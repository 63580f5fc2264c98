"""Connexion ``x-tokenInfoFunc`` for the ``oauth2`` scheme: verify the JWT locally (no I/O on the
event loop) and return its claims; Connexion then checks the operation's scopes against
``claims["scope"]``."""

from __future__ import annotations

from typing import Any


def token_info(token: str, request: Any = None) -> dict[str, Any] | None:
    if request is None:
        return None
    container = request.scope.get("petstore")
    if container is None:
        return None
    claims: dict[str, Any] | None = container.tokens.verify(token)
    return claims
