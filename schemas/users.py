"""User ↔ #/components/schemas/User (the password hash is never dumped)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

from models import User
from schemas.common import Timestamp, tenant_or_none


class UserSchema(Schema):
    id = fields.UUID()
    username = fields.String()
    email = fields.String()
    firstName = fields.String(attribute="first_name")
    lastName = fields.String(attribute="last_name")
    phone = fields.String()
    preferences = fields.Dict()
    role = fields.String()
    tenantId = fields.Function(tenant_or_none)
    createdAt = Timestamp(attribute="created_at")
    updatedAt = Timestamp(attribute="updated_at")


_user_schema = UserSchema()


def dump_user(user: User, api_base: str) -> dict[str, Any]:
    data: dict[str, Any] = _user_schema.dump(user)
    for key in ("phone", "preferences"):
        if data.get(key) is None:
            data.pop(key, None)
    data["links"] = {"self": f"{api_base}/users/{user.id}"}
    return data
