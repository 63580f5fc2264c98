"""Everything a request needs, built once per app by ``app.create_app`` and put in the ASGI
scope (``scope["petstore"]``) so handlers and the token-info function can reach it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from auth.accounts import RoleLookup
from auth.tokens import TokenService
from models.database import Database
from services.chat import ChatService
from services.delivery import Sender
from services.images import ImageService
from services.processor import PaymentProcessor
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
    processor: PaymentProcessor
    sender: Sender
    chat: ChatService
    images: ImageService
    upstream: Any = None  # infra.llm.OpenAICompatibleModel when configured

    async def close(self) -> None:
        close = getattr(self.sender, "close", None)
        if close is not None:
            await close()
        if self.upstream is not None:
            await self.upstream.close()
        await self.db.dispose()
        await self.counters.close()
