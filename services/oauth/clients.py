"""OAuth clients: what a registration says (validated here, naming the RFC 7591 field) and the
client as the grants see it.

Rules: only an admin registers a client (dynamic registration with an admin token, or the
``manage.py create-client`` command); the client belongs to the admin's tenant, and the users
who authorize through it are that tenant's. A public client (a browser or native app, a device)
has no secret and authenticates with ``none``; a confidential one gets a secret, shown once.
Redirect URIs are matched exactly; each must be absolute, without a fragment, ``https`` or
``http`` on a loopback host (RFC 8252 native apps)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from models.oauth import OAuthClient

AUTHORIZATION_CODE = "authorization_code"
REFRESH_TOKEN = "refresh_token"  # noqa: S105 (a grant type's name)
DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
GRANT_TYPES = (AUTHORIZATION_CODE, REFRESH_TOKEN, DEVICE_CODE)
AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post")

SCOPE_WORDS: dict[str, str] = {
    "read:pets": "See the pets in the catalogue",
    "write:pets": "Add, change and remove pets in the catalogue (staff only)",
    "read:orders": "See your adoption orders",
    "write:orders": "Place, pay and cancel adoption orders for you",
    "read:user": "See your account",
    "write:user": "Change or delete your account",
    "chat:write": "Talk to the shelter's assistant for you",
}
"""Every scope a client may ask for, in the words the consent page shows."""
OAUTH_SCOPES = tuple(SCOPE_WORDS)
LOOPBACK = ("127.0.0.1", "[::1]", "localhost", "::1")


def digest(secret: str) -> str:
    """How secrets are stored (client secrets, codes, refresh tokens, device codes): SHA-256
    hex. Each is a random 256-bit value, so no slow hash is needed, and it can be looked up."""
    return hashlib.sha256(secret.encode()).hexdigest()


class RegistrationError(ValueError):
    """RFC 7591 §3.2.2: ``error`` is invalid_redirect_uri or invalid_client_metadata."""

    def __init__(self, error: str, detail: str) -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail


def _redirect_uri_error(uri: object) -> str | None:
    if not isinstance(uri, str) or not uri or len(uri) > 2000:
        return "each redirect URI must be a string of 1 to 2000 characters"
    parts = urlsplit(uri)
    if parts.fragment or "#" in uri:
        return f"redirect URI {uri!r} must not have a fragment"
    if parts.scheme == "https" and parts.netloc:
        return None
    if parts.scheme == "http" and parts.hostname in LOOPBACK:
        return None
    return f"redirect URI {uri!r} must be https, or http on a loopback host"


@dataclass(frozen=True)
class ClientData:
    """A client registration (RFC 7591 metadata names). Validates itself."""

    name: str
    redirect_uris: tuple[str, ...]
    scope: str
    grant_types: tuple[str, ...] = (AUTHORIZATION_CODE, REFRESH_TOKEN)
    token_endpoint_auth_method: str = "none"  # noqa: S105 (a method's name)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not 1 <= len(self.name.strip()) <= 100:
            raise RegistrationError("invalid_client_metadata", "client_name: 1 to 100 characters")
        if any(ord(c) < 32 for c in self.name):
            raise RegistrationError("invalid_client_metadata", "client_name: no control characters")
        if not isinstance(self.redirect_uris, tuple) or len(self.redirect_uris) > 10:
            raise RegistrationError("invalid_redirect_uri", "redirect_uris: at most 10")
        for uri in self.redirect_uris:
            problem = _redirect_uri_error(uri)
            if problem:
                raise RegistrationError("invalid_redirect_uri", f"redirect_uris: {problem}")
        if not self.grant_types or any(g not in GRANT_TYPES for g in self.grant_types):
            raise RegistrationError(
                "invalid_client_metadata", f"grant_types: a non-empty subset of {GRANT_TYPES}"
            )
        if AUTHORIZATION_CODE in self.grant_types and not self.redirect_uris:
            raise RegistrationError(
                "invalid_redirect_uri", "redirect_uris: required for authorization_code"
            )
        if self.token_endpoint_auth_method not in AUTH_METHODS:
            raise RegistrationError(
                "invalid_client_metadata", f"token_endpoint_auth_method: one of {AUTH_METHODS}"
            )
        scopes = self.scope.split() if isinstance(self.scope, str) else []
        if not scopes or any(s not in OAUTH_SCOPES for s in scopes):
            raise RegistrationError(
                "invalid_client_metadata", f"scope: a non-empty subset of {' '.join(OAUTH_SCOPES)}"
            )

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"  # noqa: S105


@dataclass(frozen=True)
class Client:
    client_id: str
    name: str
    redirect_uris: tuple[str, ...]
    scope: str
    grant_types: tuple[str, ...]
    token_endpoint_auth_method: str
    tenant: str
    secret_hash: str | None
    created_at: datetime

    @property
    def is_public(self) -> bool:
        return self.secret_hash is None

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.scope.split())

    def allows_grant(self, grant_type: str) -> bool:
        return grant_type in self.grant_types

    def check_secret(self, secret: str | None) -> bool:
        if self.secret_hash is None or not secret:
            return False
        return hmac.compare_digest(self.secret_hash, digest(secret))

    @classmethod
    def of(cls, row: OAuthClient) -> Client:
        return cls(
            client_id=row.client_id,
            name=row.name,
            redirect_uris=tuple(row.redirect_uris),
            scope=row.scope,
            grant_types=tuple(row.grant_types),
            token_endpoint_auth_method=row.token_endpoint_auth_method,
            tenant=row.tenant_id,
            secret_hash=row.secret_hash,
            created_at=row.created_at,
        )


@dataclass(frozen=True)
class RegisteredClient:
    """A new client and its secret (None for a public client): the only time it is shown."""

    client: Client
    secret: str | None


def new_client_row(
    data: ClientData, tenant: str, created_by: uuid.UUID | None, now: datetime
) -> tuple[OAuthClient, str | None]:
    secret = None if data.is_public else secrets.token_urlsafe(32)
    row = OAuthClient(
        client_id=secrets.token_urlsafe(16),
        secret_hash=None if secret is None else digest(secret),
        name=data.name.strip(),
        redirect_uris=list(data.redirect_uris),
        scope=" ".join(s for s in OAUTH_SCOPES if s in data.scope.split()),
        grant_types=list(dict.fromkeys(data.grant_types)),
        token_endpoint_auth_method=data.token_endpoint_auth_method,
        tenant_id=tenant,
        created_by=created_by,
        created_at=now,
    )
    return row, secret
