"""The one place a bearer credential becomes a ``Principal``, whatever carries it (an HTTP
header, gRPC metadata, a WebSocket's first message): signature and expiry checked once per
request, the account's *current* role applied, the tenant bound.

Rules:
- No credential: an anonymous principal in the tenant the caller names (X-Tenant-ID or its
  equivalent).
- A credential that is sent must be valid: a malformed, expired or foreign token, or one whose
  account is gone, is refused (``AuthenticationFailed``), never treated as no token at all.
- A token is bound to the tenant it was issued in; naming another tenant is ``Forbidden``.
- A token's scopes are those it was issued with that the account's current role still grants:
  a demoted account loses scopes at once, a deleted one its access (within the role cache's
  lifetime on other workers); a promoted account gains nothing until it logs in again.
- A token issued before the account's last password change or logout (an older ``ver`` claim
  than ``users.token_version``) is refused: at once on the worker that made the change, within
  the role cache's lifetime (PETSTORE_ROLE_CACHE_SECONDS) on the others.
- A token of an account that is not ACTIVE (suspended or deactivated through the Admin API) is
  refused, with the same reach in time."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, MutableMapping
from typing import Any

from auth.tokens import TokenService, principal_from_claims
from services.accounts.roles import RoleLookup
from services.shared.errors import AuthenticationFailed, FieldError, Forbidden, InvalidInput
from services.shared.principal import ROLE_SCOPES, Principal, anonymous
from services.shared.principal import client_key as principal_client_key

VERIFIED_KEY = "petstore.verified"
"""Where a request's verified token is remembered (in its ASGI scope), so that the rate limiter,
the REST security check and the handlers verify it once."""


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` value; None for anything else."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def bind_tenant(who: Principal, tenant: str | None) -> Principal:
    """The principal, provided the tenant the caller names (if any) is the token's."""
    if tenant and tenant.lower() != who.tenant:
        raise Forbidden("The token was issued for another tenant than X-Tenant-ID names.")
    return who


def tenant_id(named: str | None) -> str:
    """The tenant a caller names (X-Tenant-ID or its equivalent): a UUID, lower-cased; none is
    the shared pool. Anything else is refused, over every protocol (REST's spec says the same)."""
    if not named:
        return ""
    try:
        return str(uuid.UUID(named.strip())) if len(named) <= 40 else _bad_tenant()
    except ValueError:
        return _bad_tenant()


def _bad_tenant() -> str:
    raise InvalidInput([FieldError("X-Tenant-ID", "must be a UUID", "format")])


def client_address(scope: Mapping[str, Any]) -> str:
    """The client's address as every protocol sees it (the ASGI scope's peer, which uvicorn's
    proxy-headers option takes from X-Forwarded-For behind a trusted proxy): the one definition
    used for guests' budgets, their unpaid-order cap and their Idempotency-Key scope, each keyed
    by its ``services.shared.principal.address_key`` (an IPv6 address's /64)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def user_agent(scope: Mapping[str, Any]) -> str | None:
    """The request's User-Agent header, if any (ASGI scope headers, any HTTP-based protocol)."""
    for name, value in scope.get("headers") or ():
        if name == b"user-agent":
            return bytes(value).decode("latin-1") or None
    return None


def with_origin(who: Principal, scope: Mapping[str, Any] | None) -> Principal:
    """The principal with where its request came from (client address, user agent), which the
    audit log records for whatever the services do on its behalf."""
    if scope is None:
        return who
    return dataclasses.replace(who, address=client_address(scope), user_agent=user_agent(scope))


def client_key(claims: dict[str, Any] | None, address: str | None) -> str:
    """Whose budget a request counts against: the token's subject, else the client address
    (services.shared.principal.client_key, from a token's claims before a Principal exists)."""
    if claims:
        return principal_client_key(str(claims.get("tid", "")), claims["sub"], address)
    return principal_client_key("", None, address)


def client_keys(claims: dict[str, Any] | None, address: str | None) -> list[str]:
    """Every budget a request counts against: the token's subject (if any) and the client
    address, so that accounts opened from one address share that address's budget."""
    address_key = client_key(None, address)
    return [client_key(claims, address), address_key] if claims else [address_key]


class Authenticator:
    def __init__(self, tokens: TokenService, roles: RoleLookup) -> None:
        self.tokens = tokens
        self.roles = roles

    def verify(
        self, token: str, scope: MutableMapping[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """The token's claims if its signature, issuer, audience and expiry hold, else None;
        remembered in ``scope`` (a request's ASGI scope) so a request verifies it once."""
        if scope is not None:
            seen = scope.get(VERIFIED_KEY)
            if seen is not None and seen[0] == token:
                return seen[1]  # type: ignore[no-any-return]
        claims = self.tokens.verify(token)
        if scope is not None:
            scope[VERIFIED_KEY] = (token, claims)
        return claims

    async def current_claims(
        self, token: str, scope: MutableMapping[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """Verified claims whose ``role`` is the account's role now and whose ``scope`` is what
        the token was issued with *and* that role still grants (a demotion removes scopes at
        once; a promotion needs a new login). None when the token is invalid, its account no
        longer exists, is not ACTIVE, the token predates the account's last password change, or
        it was logged out."""
        claims = self.verify(token, scope)
        if claims is None:
            return None
        try:
            subject = uuid.UUID(str(claims["sub"]))
            version = int(claims.get("ver", 0))
        except (TypeError, ValueError):
            return None
        standing = await self.roles.standing(str(claims.get("tid", "")), subject)
        if standing is None or version != standing.token_version or not standing.active:
            return None
        if str(claims.get("jti", "")) in standing.revoked:
            return None  # logged out with this token
        issued = frozenset(str(claims.get("scope", "")).split())
        granted = ROLE_SCOPES.get(standing.role, frozenset()) & issued
        return {**claims, "role": standing.role, "scope": " ".join(sorted(granted))}

    async def principal(
        self,
        authorization: str | None,
        tenant: str | None = None,
        scope: MutableMapping[str, Any] | None = None,
    ) -> Principal:
        """The caller behind an Authorization value (``Bearer <token>``) in the named tenant,
        with its request's origin when ``scope`` is given (``with_origin``).
        Raises AuthenticationFailed (a credential that is not a valid token) and Forbidden
        (another tenant)."""
        tenant = tenant_id(tenant)
        if not authorization:
            return with_origin(anonymous(tenant), scope)
        token = bearer_token(authorization)
        claims = await self.current_claims(token, scope) if token else None
        if claims is None:
            raise AuthenticationFailed("The bearer token is invalid or expired.")
        return with_origin(bind_tenant(principal_from_claims(claims), tenant), scope)
