"""Inventory → #/components/schemas/Inventory and InventoryCollection."""

from __future__ import annotations

from typing import Any

from models.enums import PetStatus
from schemas.common import collection_links, page_meta
from services.catalogue.inventory import Counts, Inventory
from services.shared.pagination import Page


def dump_counts(counts: Counts) -> dict[str, int]:
    by = counts.by_status
    return {
        "available": by[PetStatus.AVAILABLE],
        "pending": by[PetStatus.PENDING],
        "adopted": by[PetStatus.ADOPTED],
        "notAvailable": by[PetStatus.NOT_AVAILABLE],
        "total": counts.total,
    }


def dump_inventory(inventory: Inventory) -> dict[str, Any]:
    return {
        **dump_counts(inventory.overall),
        "bySpecies": {s: dump_counts(c) for s, c in inventory.by_species.items()},
    }


def dump_inventories(page: Page[tuple[str, Counts]], api_base: str) -> dict[str, Any]:
    return {
        "data": [{"species": species, **dump_counts(counts)} for species, counts in page.items],
        "pagination": page_meta(page),
        "links": collection_links(page, api_base, "/inventories", {}),
    }
