"""Signed JWT access tokens (HS256) carrying subject, role, scopes and tenant."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import jwt

from services.shared.principal import ROLE_SCOPES, IssuedToken, Principal

ALGORITHM = "HS256"
AUDIENCE = "petstore-api"


__all__ = ["ALGORITHM", "AUDIENCE", "IssuedToken", "TokenService", "principal_from_claims"]


class TokenService:
    def __init__(self, secret: str, issuer: str, ttl_seconds: int) -> None:
        self._secret = secret
        self._issuer = issuer
        self._ttl = ttl_seconds

    def issue(
        self,
        subject: uuid.UUID,
        role: str,
        tenant: str,
        scopes: frozenset[str] | None = None,
        version: int = 0,
        client_id: str = "petstore-api",
    ) -> IssuedToken:
        """A token for the role's scopes, or for ``scopes`` of them only (a narrower token),
        under the account's current token ``version`` (models.User.token_version), for
        ``client_id`` (RFC 9068: the OAuth client it was issued to; the API's own login is
        ``petstore-api``)."""
        now = int(time.time())
        jti = uuid.uuid4().hex
        allowed = ROLE_SCOPES.get(role, frozenset())
        scope = " ".join(sorted(allowed if scopes is None else allowed & scopes))
        claims = {
            "iss": self._issuer,
            "aud": AUDIENCE,
            "sub": str(subject),
            "role": role,
            "scope": scope,
            "tid": tenant,
            "iat": now,
            "exp": now + self._ttl,
            "jti": jti,
            "ver": version,
            "client_id": client_id,
        }
        token = jwt.encode(claims, self._secret, algorithm=ALGORITHM, headers={"typ": "at+jwt"})
        return IssuedToken(
            token=token,
            expires_at=datetime.fromtimestamp(now + self._ttl, UTC),
            expires_in=self._ttl,
            scope=scope,
            jti=jti,
        )

    def verify(self, token: str) -> dict[str, Any] | None:
        """Claims of a valid, unexpired token from this issuer; None otherwise."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=self._issuer,
                options={"require": ["exp", "sub", "iat", "scope"]},
            )
        except jwt.PyJWTError:
            return None
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
