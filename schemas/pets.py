"""Pet → #/components/schemas/Pet and PetCollection."""

from __future__ import annotations

from typing import Any

from models import Pet
from schemas.common import collection_links, page_meta, put_optional, timestamp
from services.shared.pagination import Page


def dump_pet(pet: Pet, api_base: str) -> dict[str, Any]:
    pet_id = str(pet.id)
    data: dict[str, Any] = {
        "id": pet_id,
        "name": pet.name,
        "species": pet.species,
        "ageMonths": pet.age_months,
        "price": f"{pet.price:.2f}",
        "currency": pet.currency,
        "status": pet.status,
        "photos": [photo_url(p, api_base) for p in pet.photos or ()],
        "tenantId": pet.tenant_id or None,
        "createdAt": timestamp(pet.created_at),
        "updatedAt": timestamp(pet.updated_at),
        "links": {"self": f"{api_base}/pets/{pet_id}"},
    }
    if pet.status == "AVAILABLE":  # where to adopt it: POST an order with this petId
        data["links"]["adopt"] = f"{api_base}/orders"
    put_optional(data, "breed", pet.breed)
    put_optional(data, "size", pet.size)
    put_optional(data, "color", pet.color)
    put_optional(data, "gender", pet.gender)
    put_optional(data, "goodWithKids", pet.good_with_kids)
    put_optional(data, "goodWithPets", pet.good_with_pets)
    put_optional(data, "description", pet.description)
    put_optional(data, "medicalInfo", pet.medical_info)
    return data


def photo_url(stored: str, api_base: str) -> str:
    """Uploaded photos are stored as paths below the API base; absolute URLs pass through."""
    return stored if "://" in stored else f"{api_base}/{stored}"


def etag(pet: Pet) -> str:
    return f'"{pet.id.hex[-12:]}-{pet.version}"'


def dump_collection(
    page: Page[Pet], api_base: str, path: str, params: dict[str, Any]
) -> dict[str, Any]:
    return {
        "data": [dump_pet(p, api_base) for p in page.items],
        "pagination": page_meta(page),
        "links": collection_links(page, api_base, path, params),
    }
