"""Who is calling: one Principal, built by auth/ from any credential and handed to services."""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from models.base import SHARED_POOL
from models.enums import Role
from services.shared.errors import AuthenticationFailed, Forbidden

ADMIN_SCOPE = "admin"

USER_SCOPES = frozenset(
    {"read:pets", "read:orders", "write:orders", "read:user", "write:user", "chat:write"}
)
ROLE_SCOPES: dict[str, frozenset[str]] = {
    Role.USER: USER_SCOPES,
    Role.ADMIN: USER_SCOPES | {"write:pets", ADMIN_SCOPE},
}
"""Roles decide scopes. A user adopts, orders and chats; an admin (shelter staff) also manages the
catalogue (write:pets) and the Admin API (admin). Documented in spec/openapi.yaml info."""


@dataclass(frozen=True)
class Principal:
    subject: uuid.UUID | None
    role: str
    scopes: frozenset[str]
    tenant: str = SHARED_POOL
    address: str | None = field(default=None, compare=False)
    """Where the request came from (``auth.principals.client_address``), for the audit log."""
    user_agent: str | None = field(default=None, compare=False)
    """The client's User-Agent (or its protocol's equivalent), for the audit log."""

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN and ADMIN_SCOPE in self.scopes

    @property
    def is_authenticated(self) -> bool:
        return self.subject is not None

    def can_access_user(self, user_id: uuid.UUID) -> bool:
        return self.is_admin or self.subject == user_id


@dataclass(frozen=True)
class IssuedToken:
    """An access token as handed to its account: the signed token, when it ends, its scopes."""

    token: str
    expires_at: datetime
    expires_in: int
    scope: str
    jti: str = ""
    """The token's id (its ``jti`` claim): not a secret; the audit log and logout name it."""


class TokenIssuer(Protocol):
    """The one token issuer (auth.tokens.TokenService), injected into the account use cases
    that hand out a token (log in, register), so both issue it alike."""

    def issue(
        self,
        subject: uuid.UUID,
        role: str,
        tenant: str,
        scopes: frozenset[str] | None = None,
        version: int = 0,
    ) -> IssuedToken: ...


IPV6_GROUP_PREFIX = 64
"""IPv6 clients are grouped by their /64: one subscriber or host usually holds a whole /64 and
can pick any of its 2**64 addresses, so a budget per /128 would be a fresh budget per request."""


def address_key(address: str | None) -> str:
    """Who a client address stands for in every budget and cap keyed by address (rate limits,
    the login throttle per address, a guest's unpaid-order cap, a guest's Idempotency-Key
    scope, callbacks): an IPv4 address itself; an IPv6 address its /64 (``2001:db8::/64``); an
    IPv4-mapped IPv6 address (``::ffff:192.0.2.1``) the IPv4 address. Anything that is not an
    IP address (a Unix socket peer, none) is kept as it is, ``unknown`` for none."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_GROUP_PREFIX), strict=False))
    return str(ip)


def client_key(tenant: str, subject: object | None, address: str | None) -> str:
    """Whose budgets a request counts against, over every protocol and for every budget (the
    general rate limit, chat, orders): the account (tenant and subject) when a valid token is
    sent, else the client address grouped by ``address_key`` (a guest)."""
    if subject is not None:
        return f"sub:{tenant}:{subject}"
    return f"ip:{address_key(address)}"


def anonymous(tenant: str = SHARED_POOL) -> Principal:
    return Principal(subject=None, role="anonymous", scopes=frozenset(), tenant=tenant)


def require_scope(principal: Principal, scope: str) -> None:
    """For use cases that need a token: none is AuthenticationFailed (REST 401, GraphQL
    UNAUTHENTICATED), one without ``scope`` is Forbidden, whichever protocol carried it."""
    if not principal.is_authenticated:
        raise AuthenticationFailed("This operation requires a bearer token.")
    if scope not in principal.scopes:
        raise Forbidden(f"The token does not carry the {scope} scope this operation requires.")


def check_optional_scope(principal: Principal, scope: str) -> None:
    """For use cases open to guests (orders): a token that is sent must carry ``scope``."""
    if principal.is_authenticated:
        require_scope(principal, scope)
