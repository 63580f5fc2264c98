"""Pet → #/components/schemas/Pet and PetCollection."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from models import Pet
from schemas.common import put_optional, timestamp
from services.pagination import Page


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
        "photos": list(pet.photos or ()),
        "tenantId": pet.tenant_id or None,
        "createdAt": timestamp(pet.created_at),
        "updatedAt": timestamp(pet.updated_at),
        "links": {"self": f"{api_base}/pets/{pet_id}"},
    }
    put_optional(data, "breed", pet.breed)
    put_optional(data, "size", pet.size)
    put_optional(data, "color", pet.color)
    put_optional(data, "gender", pet.gender)
    put_optional(data, "goodWithKids", pet.good_with_kids)
    put_optional(data, "goodWithPets", pet.good_with_pets)
    put_optional(data, "description", pet.description)
    put_optional(data, "medicalInfo", pet.medical_info)
    return data


def etag(pet: Pet) -> str:
    return f'"{pet.id.hex[-12:]}-{pet.version}"'


def dump_collection(
    page: Page[Pet], api_base: str, path: str, params: dict[str, Any]
) -> dict[str, Any]:
    def link(number: int) -> str:
        query = {k: v for k, v in params.items() if v is not None and k not in ("page", "limit")}
        query.update(page=number, limit=page.limit)
        return f"{api_base}{path}?{urlencode(query, doseq=True)}"

    links = {"self": link(page.page), "first": link(1), "last": link(page.total_pages)}
    if page.page > 1:
        links["prev"] = link(min(page.page - 1, page.total_pages))
    if page.page < page.total_pages:
        links["next"] = link(page.page + 1)
    return {
        "data": [dump_pet(p, api_base) for p in page.items],
        "pagination": {
            "page": page.page,
            "limit": page.limit,
            "totalItems": page.total,
            "totalPages": page.total_pages,
        },
        "links": links,
    }
