"""User ↔ #/components/schemas/User (the password hash is never dumped)."""

from __future__ import annotations

from typing import Any

from models import User
from schemas.common import put_optional, timestamp
from schemas.loading import LoadSchema, Obj, Str, load
from services.accounts.users import NewUser, PasswordChange, UserData


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


class UserProfileSchema(LoadSchema):
    """#/components/schemas/UserProfile (Update User) → UserData's keyword arguments."""

    username = Str(required=True)
    email = Str(required=True)
    first_name = Str("firstName", required=True)
    last_name = Str("lastName", required=True)
    phone = Str()
    preferences = Obj()


class NewUserSchema(UserProfileSchema):
    """#/components/schemas/NewUser (Create User): the profile and the password."""

    password = Str(required=True)


class PasswordChangeSchema(LoadSchema):
    """#/components/schemas/PasswordChange (Change Password)."""

    current_password = Str("currentPassword", required=True)
    new_password = Str("newPassword", required=True)


_PROFILE, _NEW_USER, _PASSWORD = UserProfileSchema(), NewUserSchema(), PasswordChangeSchema()


def load_user(body: dict[str, Any]) -> UserData:
    """Update User: the profile fields. Raises InvalidInput naming every bad field."""
    return UserData(**load(_PROFILE, body))


def load_new_user(body: dict[str, Any]) -> NewUser:
    """Create User: the profile and the password. Raises InvalidInput naming every bad field."""
    return NewUser(**load(_NEW_USER, body))


def load_password_change(body: dict[str, Any]) -> PasswordChange:
    """Change Password: the current and the new password. Raises InvalidInput."""
    return PasswordChange(**load(_PASSWORD, body))
