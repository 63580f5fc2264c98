"""User ↔ #/components/schemas/User (the password hash is never dumped), UserPublicProfile,
UserRegistration (the account and its Token) and Token."""

from __future__ import annotations

from typing import Any

from models import User
from schemas.common import put_optional, timestamp
from schemas.loading import LoadSchema, Obj, Str, load
from services.accounts.users import NewUser, PasswordChange, PublicProfile, SignedIn, UserData
from services.shared.principal import IssuedToken


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


def dump_public_profile(profile: PublicProfile, api_base: str) -> dict[str, Any]:
    """#/components/schemas/UserPublicProfile: another account, as anyone may see it."""
    user_id = str(profile.id)
    return {
        "id": user_id,
        "username": profile.username,
        "firstName": profile.first_name,
        "lastName": profile.last_name,
        "createdAt": timestamp(profile.created_at),
        "links": {"self": f"{api_base}/users/{user_id}"},
    }


def dump_account(account: User | PublicProfile, api_base: str) -> dict[str, Any]:
    """Get User: the whole account (owner, admins) or the public profile (anyone else)."""
    if isinstance(account, PublicProfile):
        return dump_public_profile(account, api_base)
    return dump_user(account, api_base)


def dump_token(issued: IssuedToken) -> dict[str, Any]:
    """#/components/schemas/Token: the reference's fields and OAuth 2.0's."""
    return {
        "token": issued.token,
        "expiresAt": timestamp(issued.expires_at),
        "access_token": issued.token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "scope": issued.scope,
    }


def dump_registration(signed_in: SignedIn, api_base: str) -> dict[str, Any]:
    """#/components/schemas/UserRegistration: the User's fields plus ``token`` (a Token)."""
    return {**dump_user(signed_in.user, api_base), "token": dump_token(signed_in.token)}


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
