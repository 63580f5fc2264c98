"""User operations (tag User)."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.responses import Response

from handlers._context import (
    api_base,
    container,
    header_tenant,
    json_response,
    no_content,
    principal,
)
from schemas.users import dump_user
from services import users as service


def _profile(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "username": body["username"],
        "email": body["email"],
        "first_name": body["firstName"],
        "last_name": body["lastName"],
        "phone": body.get("phone"),
        "preferences": body.get("preferences"),
    }


async def create_user(body: dict[str, Any]) -> Response:
    data = service.NewUser(**_profile(body), password=body["password"])
    user = await service.register(container().db, header_tenant(), data)
    location = f"{api_base()}/users/{user.id}"
    return json_response(dump_user(user, api_base()), 201, {"Location": location})


async def get_user(id: uuid.UUID) -> Response:  # noqa: A002 - the spec names it id
    user = await service.get_user(container().db, principal(), uuid.UUID(str(id)))
    return json_response(dump_user(user, api_base()))


async def update_user(id: uuid.UUID, body: dict[str, Any]) -> Response:  # noqa: A002
    data = service.UserData(**_profile(body))
    user = await service.update_user(container().db, principal(), uuid.UUID(str(id)), data)
    return json_response(dump_user(user, api_base()))


async def delete_user(id: uuid.UUID) -> Response:  # noqa: A002
    who, user_id = principal(), uuid.UUID(str(id))
    await service.delete_user(container().db, who, user_id)
    container().roles.forget(who.tenant, user_id)
    return no_content()
