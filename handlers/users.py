"""User operations (tag User)."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.responses import Response

from handlers._context import (
    NO_STORE,
    api_base,
    container,
    json_response,
    no_content,
    principal,
)
from schemas.users import (
    dump_account,
    dump_registration,
    dump_user,
    load_new_user,
    load_password_change,
    load_user,
)


async def create_user(body: dict[str, Any]) -> Response:
    """The account and its first token (no second call to log in); not stored by caches."""
    data = load_new_user(body)
    signed_in = await container().users.register(principal(), data)
    location = f"{api_base()}/users/{signed_in.user.id}"
    body = dump_registration(signed_in, api_base())
    return json_response(body, 201, {"Location": location, **NO_STORE})


async def get_user(id: uuid.UUID) -> Response:  # noqa: A002 - the spec names it id
    account = await container().users.get(principal(), uuid.UUID(str(id)))
    return json_response(dump_account(account, api_base()))


async def update_user(id: uuid.UUID, body: dict[str, Any]) -> Response:  # noqa: A002
    data = load_user(body)
    user = await container().users.update(principal(), uuid.UUID(str(id)), data)
    return json_response(dump_user(user, api_base()))


async def delete_user(id: uuid.UUID) -> Response:  # noqa: A002
    await container().users.delete(principal(), uuid.UUID(str(id)))
    return no_content()


async def change_password(id: uuid.UUID, body: dict[str, Any]) -> Response:  # noqa: A002
    change = load_password_change(body)
    await container().users.change_password(principal(), uuid.UUID(str(id)), change)
    return no_content()
