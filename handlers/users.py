"""User operations (tag User)."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.responses import Response

from handlers._context import (
    api_base,
    container,
    json_response,
    no_content,
    principal,
)
from schemas.users import dump_user, load_new_user, load_user


async def create_user(body: dict[str, Any]) -> Response:
    data = load_new_user(body)
    user = await container().users.register(principal(), data)
    location = f"{api_base()}/users/{user.id}"
    return json_response(dump_user(user, api_base()), 201, {"Location": location})


async def get_user(id: uuid.UUID) -> Response:  # noqa: A002 - the spec names it id
    user = await container().users.get(principal(), uuid.UUID(str(id)))
    return json_response(dump_user(user, api_base()))


async def update_user(id: uuid.UUID, body: dict[str, Any]) -> Response:  # noqa: A002
    data = load_user(body)
    user = await container().users.update(principal(), uuid.UUID(str(id)), data)
    return json_response(dump_user(user, api_base()))


async def delete_user(id: uuid.UUID) -> Response:  # noqa: A002
    await container().users.delete(principal(), uuid.UUID(str(id)))
    return no_content()
