"""User ↔ #/components/schemas/User (the password hash is never dumped)."""

from __future__ import annotations

from typing import Any

from models import User
from schemas.common import put_optional, timestamp
from services.accounts.users import NewUser, UserData


def dump_user(user: User, api_base: str) -> dict[str, Any]:
    user_id = str(user.id)
    data: dict[str, Any] = {
        "id": user_id,
        "username": user.username,
        "email": user.email,
        "firstName": user.first_name,
        "lastName": user.last_name,
        "role": user.role,
        "tenantId": user.tenant_id or None,
        "createdAt": timestamp(user.created_at),
        "updatedAt": timestamp(user.updated_at),
        "links": {"self": f"{api_base}/users/{user_id}"},
    }
    put_optional(data, "phone", user.phone)
    put_optional(data, "preferences", user.preferences)
    return data


def _profile(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "username": body["username"],
        "email": body["email"],
        "first_name": body["firstName"],
        "last_name": body["lastName"],
        "phone": body.get("phone"),
        "preferences": body.get("preferences"),
    }


def load_user(body: dict[str, Any]) -> UserData:
    """Update User: the profile fields."""
    return UserData(**_profile(body))


def load_new_user(body: dict[str, Any]) -> NewUser:
    """Create User: the profile and the password."""
    return NewUser(**_profile(body), password=body["password"])
