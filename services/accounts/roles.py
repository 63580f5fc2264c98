"""The current role of a token's subject, so a deleted or demoted account loses its powers
before its token expires. Looked up per request with a short in-process cache (staleness at most
``ttl`` seconds across workers; an account deleted through this process is forgotten at once)."""

from __future__ import annotations

import time
import uuid

from sqlalchemy import select

from models import User
from models.database import Database


class RoleLookup:
    def __init__(self, db: Database, ttl_seconds: float) -> None:
        self._db = db
        self._ttl = ttl_seconds
        self._cache: dict[tuple[str, uuid.UUID], tuple[float, str | None]] = {}

    async def role(self, tenant: str, subject: uuid.UUID) -> str | None:
        """The account's role now, or None when it no longer exists."""
        key = (tenant, subject)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        role: str | None = await self._db.run(
            tenant, lambda s: s.scalar(select(User.role).where(User.id == subject))
        )
        if self._ttl > 0:
            if len(self._cache) > 50_000:
                self._cache.clear()
            self._cache[key] = (now + self._ttl, role)
        return role

    def forget(self, tenant: str, subject: uuid.UUID) -> None:
        self._cache.pop((tenant, subject), None)
