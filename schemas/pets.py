"""Pet ↔ #/components/schemas/Pet and PetCollection; list and search queries → PetQuery."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from models import Pet
from schemas.common import collection_links, page_meta, put_optional, timestamp
from services.catalogue.pets import PetData, PetQuery
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
        "photos": [photo_url(pet_id, p, api_base) for p in pet.photos or ()],
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


def photo_url(pet_id: str, stored: str, api_base: str) -> str:
    """Uploaded photos are stored by image name (Get Pet Image serves them); absolute URLs pass
    through. The base is added here, so a changed host or PETSTORE_PUBLIC_URL never leaves
    stale URLs behind."""
    return stored if "://" in stored else f"{api_base}/pets/{pet_id}/images/{stored}"


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


_FIELDS = {
    "ageMonths": "age_months",
    "goodWithKids": "good_with_kids",
    "goodWithPets": "good_with_pets",
    "medicalInfo": "medical_info",
}
_WRITABLE = {
    "name",
    "species",
    "age_months",
    "price",
    "status",
    "currency",
    "breed",
    "size",
    "color",
    "gender",
    "good_with_kids",
    "good_with_pets",
    "description",
    "medical_info",
}


def load_pet(body: dict[str, Any]) -> PetData:
    """Writable fields only: readOnly fields (id, createdAt, links, ...) are ignored."""
    values = {_FIELDS.get(k, k): v for k, v in body.items()}
    values = {k: v for k, v in values.items() if k in _WRITABLE}
    values["price"] = Decimal(values["price"])
    return PetData(**values)


def _tuple(value: Any) -> tuple[str, ...]:
    return tuple(value) if value else ()


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def load_pet_query(params: dict[str, Any]) -> PetQuery:
    """The list's query parameters (or a search body flattened into them) → PetQuery."""
    sort = params.get("sort") or "-createdAt"
    return PetQuery(
        page=params.get("page") or 1,
        limit=params.get("limit") or 20,
        species=_tuple(params.get("species")),
        status=_tuple(params.get("status")),
        size=_tuple(params.get("size")),
        gender=_tuple(params.get("gender")),
        good_with_kids=params.get("goodWithKids"),
        good_with_pets=params.get("goodWithPets"),
        min_age=params.get("minAge"),
        max_age=params.get("maxAge"),
        min_price=_decimal(params.get("minPrice")),
        max_price=_decimal(params.get("maxPrice")),
        name=params.get("name"),
        sort=sort.lstrip("-"),
        descending=sort.startswith("-"),
    )


def flatten_search(body: dict[str, Any]) -> dict[str, Any]:
    """A Search Pets body → the equivalent list query parameters (its links use them)."""
    criteria = body.get("criteria", {})
    ages, prices = criteria.get("ageRange", {}), criteria.get("priceRange", {})
    compat, sort = criteria.get("compatibility", {}), body.get("sort", {})
    descending = sort.get("order", "DESC") == "DESC"
    return {
        **body.get("pagination", {}),
        **{k: criteria.get(k) for k in ("species", "status", "size", "gender", "name")},
        **compat,
        "minAge": ages.get("min"),
        "maxAge": ages.get("max"),
        "minPrice": prices.get("min"),
        "maxPrice": prices.get("max"),
        "sort": ("-" if descending else "") + sort.get("field", "createdAt"),
    }
