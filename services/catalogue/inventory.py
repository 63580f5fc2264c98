"""Store inventory: live counts of the tenant's pets by adoption status and species.

Rule: any authenticated caller with ``read:pets`` may read their tenant's inventory (checked by
the protocol's scope rules); counts are read from ``pet_counts``, which database triggers keep
exact in the transaction of every pet write (migration 0015): a few rows, whatever the size of
the catalogue."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.engine import Connection

from models.database import Database
from models.enums import PetStatus, Species
from services.catalogue import reads
from services.shared.pagination import Page, PageRequest
from services.shared.principal import Principal, require_scope

STATUSES = tuple(s.value for s in PetStatus)  # plain str: they become JSON object keys
SPECIES = tuple(s.value for s in Species)


@dataclass
class Counts:
    by_status: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))

    @property
    def total(self) -> int:
        return sum(self.by_status.values())


@dataclass
class Inventory:
    overall: Counts
    by_species: dict[str, Counts]


def _count(conn: Connection, tenant: str) -> Inventory:
    rows = reads.inventory_counts(conn, tenant)
    overall = Counts()
    by_species = {species: Counts() for species in SPECIES}
    for species, status, count in rows:
        overall.by_status[status] = overall.by_status.get(status, 0) + count
        by_species.setdefault(species, Counts()).by_status[status] = count
    return Inventory(overall=overall, by_species=by_species)


async def get_inventory(db: Database, tenant: str) -> Inventory:
    """Counts for the whole catalogue of one tenant, with every species present (zeros too)."""
    return await db.read(tenant, _count)


async def list_inventories(
    db: Database, tenant: str, paging: PageRequest
) -> Page[tuple[str, Counts]]:
    """One inventory row per species, in the Species enum's order, paginated."""
    inventory = await get_inventory(db, tenant)
    return paging.slice(list(inventory.by_species.items()))


class InventoryService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, principal: Principal) -> Inventory:
        require_scope(principal, "read:pets")
        return await get_inventory(self.db, principal.tenant)

    async def by_species(
        self, principal: Principal, paging: PageRequest
    ) -> Page[tuple[str, Counts]]:
        return await list_inventories(self.db, principal.tenant, paging)
