"""Create Authentication Token and Revoke Token (tag User)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connexion import request
from starlette.responses import Response

from auth.principals import client_address
from handlers._context import (
    NO_STORE,
    accepted_claims,
    container,
    json_response,
    no_content,
    principal,
)
from schemas.users import dump_token


async def create_auth_token(body: dict[str, Any]) -> Response:
    client = client_address(request.scope)
    signed_in = await container().users.login(
        principal(), body["username"], body["password"], client
    )
    return json_response(dump_token(signed_in.token), 201, NO_STORE)


async def revoke_current_token() -> Response:
    claims = accepted_claims()  # the token presented, as the security check accepted it
    expires = datetime.fromtimestamp(int(claims.get("exp", 0)), UTC)
    await container().users.logout(principal(), claims.get("jti"), expires)
    return no_content()
