"""Create Authentication Token and Revoke Token (tag User)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connexion import request
from starlette.responses import Response

from auth.principals import client_address
from handlers._context import accepted_claims, container, json_response, no_content, principal
from schemas.common import timestamp

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def create_auth_token(body: dict[str, Any]) -> Response:
    c = container()
    client = client_address(request.scope)
    user = await c.users.authenticate(principal(), body["username"], body["password"], client)
    issued = c.tokens.issue(user.id, user.role, user.tenant_id, version=user.token_version)
    return json_response(
        {
            "token": issued.token,
            "expiresAt": timestamp(issued.expires_at),
            "access_token": issued.token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "scope": issued.scope,
        },
        201,
        NO_STORE,
    )


async def revoke_current_token() -> Response:
    claims = accepted_claims()  # the token presented, as the security check accepted it
    expires = datetime.fromtimestamp(int(claims.get("exp", 0)), UTC)
    await container().users.logout(principal(), claims.get("jti"), expires)
    return no_content()
