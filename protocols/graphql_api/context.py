"""Per-request context for the resolvers: the container, the caller, URL base, loaders."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from protocols.graphql_api.loaders import BatchLoader
from services.catalogue.reads import PetRecord
from services.orders.orders import OrderAccess
from services.shared.errors import DomainError
from services.shared.principal import Principal
from web import urls
from web.container import SCOPE_KEY, Container

CALLER_KEY = "petstore.graphql.caller"
"""Where the middleware leaves the caller (a Principal, or the DomainError that refused it)."""


@dataclass
class Context:
    request: Request
    container: Container
    caller: Principal | DomainError
    api_base: str
    pets: BatchLoader[uuid.UUID, PetRecord] = field(init=False)

    def __post_init__(self) -> None:
        self.pets = BatchLoader(self._fetch_pets)

    @property
    def principal(self) -> Principal:
        """The caller; raises the refusal (UNAUTHENTICATED, FORBIDDEN) if the credentials were
        refused, so every field that needs the caller reports it."""
        if isinstance(self.caller, DomainError):
            raise self.caller
        return self.caller

    def order_access(self) -> OrderAccess:
        return OrderAccess(self.principal, self.request.headers.get("x-order-token"))

    async def _fetch_pets(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, PetRecord]:
        return await self.container.pets.get_many(self.principal, ids)


def make_context(request: Request, _data: Any = None) -> Context:
    container: Container = request.scope[SCOPE_KEY]
    return Context(
        request=request,
        container=container,
        caller=request.scope[CALLER_KEY],
        api_base=urls.api_base(container.settings, request.url.scheme, request.url.netloc),
    )
