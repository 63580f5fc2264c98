"""The current role, status, token version and logged-out tokens of a token's subject, so a
deleted, demoted, suspended or deactivated account loses its powers before its token expires, a
password change ends earlier tokens and a logout the token presented. Looked up per request
with a short in-process cache (staleness at most ``ttl`` seconds across workers; an account
changed or deleted through this process is forgotten at once)."""

from __future__ import annotations

import time
import uuid
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import RevokedToken, User
from models.base import utcnow
from models.database import Database
from models.enums import UserStatus


class Standing(NamedTuple):
    """What a token is checked against: the account's role now, and the version its tokens
    must carry (raised by a password change or a logout, which ends every earlier token)."""

    role: str
    token_version: int
    revoked: frozenset[str] = frozenset()  # ids of its unexpired tokens that were logged out
    status: str = UserStatus.ACTIVE  # only an ACTIVE account's tokens work (Admin API)

    @property
    def active(self) -> bool:
        return self.status == UserStatus.ACTIVE


class RoleLookup:
    def __init__(self, db: Database, ttl_seconds: float) -> None:
        self._db = db
        self._ttl = ttl_seconds
        self._cache: dict[tuple[str, uuid.UUID], tuple[float, Standing | None]] = {}

    async def standing(self, tenant: str, subject: uuid.UUID) -> Standing | None:
        """The account's role, status and token version now, or None when it no longer
        exists."""
        key = (tenant, subject)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]

        def load(session: Session) -> Standing | None:
            row = session.execute(
                select(User.role, User.token_version, User.status).where(User.id == subject)
            ).first()
            if row is None:
                return None
            revoked = session.scalars(
                select(RevokedToken.jti).where(
                    RevokedToken.user_id == subject, RevokedToken.expires_at > utcnow()
                )
            ).all()
            return Standing(row[0], int(row[1] or 0), frozenset(revoked), row[2])

        found: Standing | None = await self._db.run(tenant, load)
        if self._ttl > 0:
            if len(self._cache) > 50_000:
                self._cache.clear()
            self._cache[key] = (now + self._ttl, found)
        return found

    async def role(self, tenant: str, subject: uuid.UUID) -> str | None:
        """The account's role now, or None when it no longer exists."""
        found = await self.standing(tenant, subject)
        return None if found is None else found.role

    def forget(self, tenant: str, subject: uuid.UUID) -> None:
        self._cache.pop((tenant, subject), None)
