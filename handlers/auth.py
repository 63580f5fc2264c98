"""Create Authentication Token (tag User)."""

from __future__ import annotations

from typing import Any

from connexion import request
from starlette.responses import Response

from handlers._context import container, header_tenant, json_response
from services import users as service

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def create_auth_token(body: dict[str, Any]) -> Response:
    c = container()
    client = (request.scope.get("client") or ("unknown",))[0]
    user = await service.authenticate(
        c.db, header_tenant(), body["username"], body["password"], c.login_throttle, client
    )
    issued = c.tokens.issue(user.id, user.role, user.tenant_id)
    return json_response(
        {
            "token": issued.token,
            "expiresAt": issued.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "access_token": issued.token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "scope": issued.scope,
        },
        201,
        NO_STORE,
    )
