"""Everything a request needs, built once per app by ``app.create_app`` and put in the ASGI
scope (``scope["petstore"]``) so handlers and the token-info function can reach it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from auth.accounts import RoleLookup
from auth.tokens import TokenService
from models.database import Database
from services.images import ImageService
from services.throttle import FailureThrottle
from settings import Settings

SCOPE_KEY = "petstore"


@dataclass
class Container:
    settings: Settings
    db: Database
    tokens: TokenService
    counters: Any
    login_throttle: FailureThrottle
    roles: RoleLookup
    images: ImageService

    async def close(self) -> None:
        await self.db.dispose()
        await self.counters.close()
