"""The catalogue's hot reads through the read cache (services.shared.readcache), wrapped around
the services from outside: the queries stay in pets.py and inventory.py, the rules too (the
inventory's scope is checked on every call, hit or miss).

Keys: the tenant and its version (in the cache itself), then what the result depends on: the
normalized query for a list, the id for a pet. The results do not depend on the caller's role
(staff and anonymous callers see the same pet representation), so no visibility is part of the
key; a caller's token only selects its tenant."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Hashable

from models.database import Database
from services.catalogue.inventory import Inventory, InventoryService
from services.catalogue.pets import PetFiles, PetQuery, PetService
from services.catalogue.reads import PetRecord
from services.shared.pagination import Page
from services.shared.principal import Principal, require_scope
from services.shared.readcache import ReadCache

FETCH = "fetch"
"""``at`` default: look the tenant's version up (a caller that has it already passes it)."""


def query_key(query: PetQuery) -> Hashable:
    """The list query as a hashable, canonical key (filters as the query normalized them)."""
    parts: list[tuple[str, object]] = []
    for f in dataclasses.fields(query):
        value = getattr(query, f.name)
        if isinstance(value, dict):
            value = tuple(sorted((str(k), repr(v)) for k, v in value.items()))
        elif isinstance(value, tuple):
            value = tuple(sorted(value))
        parts.append((f.name, value))
    return ("pets", tuple(parts))


def pet_key(pet_id: uuid.UUID) -> Hashable:
    return ("pet", pet_id)


INVENTORY_KEY: Hashable = ("inventory",)


class CachedPetService(PetService):
    """PetService whose ``list`` and ``get`` read through the cache; writes are PetService's
    (their bump comes from the unit of work)."""

    def __init__(self, db: Database, cache: ReadCache, files: PetFiles | None = None) -> None:
        super().__init__(db, files)
        self.cache = cache

    async def _version(self, principal: Principal, at: str | None) -> str | None:
        return await self.cache.version(principal.tenant) if at == FETCH else at

    async def list(
        self, principal: Principal, query: PetQuery, *, at: str | None = FETCH
    ) -> Page[PetRecord]:
        version = await self._version(principal, at)
        return await self.cache.get_or_load(
            principal.tenant,
            version,
            query_key(query),
            lambda: super(CachedPetService, self).list(principal, query),
        )

    async def get(
        self, principal: Principal, pet_id: uuid.UUID, *, at: str | None = FETCH
    ) -> PetRecord:
        version = await self._version(principal, at)
        return await self.cache.get_or_load(
            principal.tenant,
            version,
            pet_key(pet_id),
            lambda: super(CachedPetService, self).get(principal, pet_id),
        )


class CachedInventoryService(InventoryService):
    def __init__(self, db: Database, cache: ReadCache) -> None:
        super().__init__(db)
        self.cache = cache

    @staticmethod
    def authorize(principal: Principal) -> None:
        """The inventory's rule (InventoryService.get's): ``read:pets``."""
        require_scope(principal, "read:pets")

    async def get(self, principal: Principal, *, at: str | None = FETCH) -> Inventory:
        self.authorize(principal)  # before the cache: a hit must not skip it
        version = await self.cache.version(principal.tenant) if at == FETCH else at
        return await self.cache.get_or_load(
            principal.tenant,
            version,
            INVENTORY_KEY,
            lambda: super(CachedInventoryService, self).get(principal),
        )
