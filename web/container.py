"""Everything a request needs, built once per app by ``app.build_container`` and put in the ASGI
scope (``scope["petstore"]``) so every adapter and the token-info function can reach it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from auth.principals import Authenticator
from auth.security import OperationScopes
from auth.tokens import TokenService
from models.database import Database
from services.accounts.roles import RoleLookup
from services.accounts.users import UserService
from services.admin.service import AdminService
from services.catalogue.cached import CachedInventoryService, CachedPetService
from services.chat import ChatService
from services.media.images import ImageService
from services.oauth.service import OAuthService
from services.orders.processor import PaymentProcessor
from services.orders.service import OrderService
from services.shared.ratelimit import RateLimiter
from services.shared.readcache import ReadCache
from services.webhooks.delivery import Sender
from services.webhooks.subscriptions import WebhookService
from settings import Settings

SCOPE_KEY = "petstore"


@dataclass
class Container:
    settings: Settings
    db: Database
    tokens: TokenService
    auth: Authenticator
    counters: Any
    rate_limiter: RateLimiter
    roles: RoleLookup
    processor: PaymentProcessor
    sender: Sender
    pets: CachedPetService  # the catalogue's hot reads through ``cache``
    inventory: CachedInventoryService
    orders: OrderService
    users: UserService
    webhooks: WebhookService
    chat: ChatService
    images: ImageService
    admin: AdminService
    cache: ReadCache
    oauth: OAuthService
    upstream: Any = None  # infra.llm.OpenAICompatibleModel when configured
    operation_scopes: OperationScopes = field(default_factory=dict)
    """What bearerAuth requires of each operation (auth.security.bearer_scopes, by app.py)."""
    reads_served_from_cache: int = 0
    """Repeated lists and pets answered by handlers.fastpath (tests and profiles read it)."""

    async def close(self) -> None:
        close = getattr(self.sender, "close", None)
        if close is not None:
            await close()
        if self.upstream is not None:
            await self.upstream.close()
        await self.db.dispose()
        await self.counters.close()
        close_versions = getattr(self.cache.versions, "close", None)
        if close_versions is not None:
            await close_versions()
