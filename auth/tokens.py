"""The one access-token issuer: RFC 9068 JWTs (``typ: at+jwt``) signed ES256 with the key
ring's current key (auth/keys.py), verifiable by anyone with the published JWKS
(``/.well-known/jwks.json``). Logins (``POST /v1/auth/tokens``), registration and the OAuth 2.0
authorization server all issue through ``TokenService.issue``.

Claims: ``iss`` (settings.jwt_issuer, the authorization server's issuer identifier), ``aud``
(``petstore-api``), ``sub`` (the account), ``client_id`` (the OAuth client the token was issued
to; ``petstore-api`` for first-party logins), ``scope``, ``iat``, ``exp``, ``jti``, and ours:
``role``, ``tid`` (the tenant) and ``ver`` (the account's token version, models.User)."""

from __future__ import annotations

import contextlib
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import jwt

from auth.keys import ALGORITHM, KeyRing
from services.shared.principal import ROLE_SCOPES, IssuedToken, Principal

AUDIENCE = "petstore-api"
FIRST_PARTY_CLIENT = "petstore-api"
"""The ``client_id`` of tokens issued by ``POST /v1/auth/tokens`` and registration."""
TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})  # RFC 9068 section 4
REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "sub", "jti", "client_id", "scope"]
VERIFIED_CACHE_SIZE = 4096
"""Tokens whose signature this process has verified, remembered by their exact string until
they expire (the oldest forgotten first beyond this many): an ES256 verification costs ~0.1-0.2
ms of CPU, a repeat of the same token ~2 µs. The key that signed one must still be in the ring
(checked on every hit), so a dropped key ends its tokens here too."""

__all__ = [
    "ALGORITHM",
    "AUDIENCE",
    "FIRST_PARTY_CLIENT",
    "IssuedToken",
    "TokenService",
    "principal_from_claims",
]


class TokenService:
    def __init__(self, keys: KeyRing, issuer: str, ttl_seconds: int) -> None:
        self.keys = keys
        self._issuer = issuer
        self._ttl = ttl_seconds
        self._verified: dict[str, tuple[str, float, dict[str, Any]]] = {}  # token: kid, exp, claims

    @property
    def issuer(self) -> str:
        return self._issuer

    @property
    def ttl_seconds(self) -> int:
        return self._ttl

    def issue(
        self,
        subject: uuid.UUID,
        role: str,
        tenant: str,
        scopes: frozenset[str] | None = None,
        version: int = 0,
        *,
        client_id: str = FIRST_PARTY_CLIENT,
    ) -> IssuedToken:
        """A token for the role's scopes, or for ``scopes`` of them only (a narrower token),
        under the account's current token ``version`` (models.User.token_version), issued to
        ``client_id``."""
        now = int(time.time())
        jti = uuid.uuid4().hex
        allowed = ROLE_SCOPES.get(role, frozenset())
        scope = " ".join(sorted(allowed if scopes is None else allowed & scopes))
        claims = {
            "iss": self._issuer,
            "aud": AUDIENCE,
            "sub": str(subject),
            "client_id": client_id,
            "role": role,
            "scope": scope,
            "tid": tenant,
            "iat": now,
            "exp": now + self._ttl,
            "jti": jti,
            "ver": version,
        }
        key = self.keys.signing_key()
        token = jwt.encode(
            claims, key.private, algorithm=ALGORITHM, headers={"typ": "at+jwt", "kid": key.kid}
        )
        return IssuedToken(
            token=token,
            expires_at=datetime.fromtimestamp(now + self._ttl, UTC),
            expires_in=self._ttl,
            scope=scope,
            jti=jti,
        )

    def verify(self, token: str) -> dict[str, Any] | None:
        """Claims of a valid, unexpired token from this issuer; None otherwise: a token must
        be ES256 (nothing else, ``none`` included, is tried), typed ``at+jwt`` and signed by a
        key of the ring (named by its ``kid``)."""
        seen = self._verified.get(token)
        if seen is not None:
            if seen[1] > time.time() and self.keys.public_key(seen[0]) is not None:
                return dict(seen[2])
            self._verified.pop(token, None)
            return None
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return None
        kid = header.get("kid")
        if (
            header.get("alg") != ALGORITHM
            or str(header.get("typ", "")).lower() not in TOKEN_TYPES
            or not isinstance(kid, str)
        ):
            return None
        public = self.keys.public_key(kid)
        if public is None:
            return None
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                public,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=self._issuer,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError:
            return None
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            with contextlib.suppress(StopIteration, RuntimeError):  # another thread's change
                self._verified.pop(next(iter(self._verified)), None)  # the oldest entry
        self._verified[token] = (kid, float(claims["exp"]), dict(claims))
        return claims


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    role = str(claims.get("role", "user"))
    # Scopes are re-derived from the role so that a token can never carry more than its role.
    granted = set(str(claims.get("scope", "")).split()) & ROLE_SCOPES.get(role, frozenset())
    return Principal(
        subject=uuid.UUID(claims["sub"]),
        role=role,
        scopes=frozenset(granted),
        tenant=str(claims.get("tid", "")),
    )
