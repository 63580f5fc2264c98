"""Connexion ``x-tokenInfoFunc`` for the ``oauth2`` scheme: verify the JWT locally, then take the
account's *current* role (a deleted account gets 401, a demoted one loses scopes at once) and
return claims whose ``scope`` is that role's scopes that the token also carries; Connexion checks
the operation's scopes against it."""

from __future__ import annotations

import uuid
from typing import Any

from services.shared.principal import ROLE_SCOPES


async def token_info(token: str, request: Any = None) -> dict[str, Any] | None:
    container = request.scope.get("petstore") if request is not None else None
    if container is None:
        return None
    claims: dict[str, Any] | None = container.tokens.verify(token)
    if claims is None:
        return None
    try:
        subject = uuid.UUID(str(claims["sub"]))
    except ValueError:
        return None
    role = await container.roles.role(str(claims.get("tid", "")), subject)
    if role is None:
        return None
    # The role's current scopes; a token issued for fewer scopes than its role had (e.g. by
    # TokenService.issue(scopes=...)) keeps only those.
    granted = ROLE_SCOPES.get(role, frozenset())
    issued = frozenset(str(claims.get("scope", "")).split())
    if issued != ROLE_SCOPES.get(str(claims.get("role", "")), frozenset()):
        granted = granted & issued
    return {**claims, "role": role, "scope": " ".join(sorted(granted))}
