"""Pet ↔ #/components/schemas/Pet and PetCollection; list and search queries → PetQuery."""

from __future__ import annotations

from typing import Any

from marshmallow import fields

from models import Pet
from models.enums import PetStatus
from schemas.common import collection_links, page_meta, put_optional, timestamp
from schemas.loading import Bool, Int, LoadSchema, Money, Obj, Str, load
from services.catalogue.pets import PetData, PetQuery
from services.shared.errors import FieldError, InvalidInput
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
    if pet.status == PetStatus.AVAILABLE:  # where to adopt it: POST an order with this petId
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


class PetSchema(LoadSchema):
    """#/components/schemas/Pet, writable fields → PetData's keyword arguments."""

    name = Str(required=True)
    species = Str(required=True)
    age_months = Int("ageMonths", required=True)
    price = Money(required=True)
    status = Str()
    currency = Str()
    breed = Str()
    size = Str()
    color = Str()
    gender = Str()
    good_with_kids = Bool("goodWithKids")
    good_with_pets = Bool("goodWithPets")
    description = Str()
    medical_info = Obj("medicalInfo")


_PET = PetSchema()


def load_pet(body: dict[str, Any]) -> PetData:
    """Create and Replace Pet: writable fields only (readOnly ones such as id, createdAt, links
    are ignored). Raises InvalidInput naming every bad field."""
    return PetData(**load(_PET, body))


def _strings(key: str | None = None) -> fields.Field[Any]:
    return fields.List(fields.String(), data_key=key)


class PetQuerySchema(LoadSchema):
    """List Pets' query parameters (a search body is flattened into them first)."""

    page = Int()
    limit = Int()
    species = _strings()
    status = _strings()
    size = _strings()
    gender = _strings()
    good_with_kids = Bool("goodWithKids")
    good_with_pets = Bool("goodWithPets")
    min_age = Int("minAge")
    max_age = Int("maxAge")
    min_price = Money("minPrice")
    max_price = Money("maxPrice")
    name = Str()
    sort = Str()


_QUERY = PetQuerySchema()


def load_pet_query(params: dict[str, Any]) -> PetQuery:
    """The list's query parameters (or a search body flattened into them) → PetQuery. Absent
    and null values take the command's defaults (PageRequest owns the page's)."""
    values = load(_QUERY, {k: v for k, v in params.items() if v is not None})
    sort = values.pop("sort", None) or "-createdAt"
    for key in ("species", "status", "size", "gender"):
        if key in values:
            values[key] = tuple(values[key])
    return PetQuery(**values, sort=sort.lstrip("-"), descending=sort.startswith("-"))


OTHER_PETS = ("goodWithPets", "goodWithDogs", "goodWithCats")
"""The reference's search names compatibility with dogs and with cats; the catalogue records one
flag, compatibility with other pets (``goodWithPets``), so all three filter on it."""


def _other_pets(compat: dict[str, Any]) -> bool | None:
    """``goodWithPets``, ``goodWithDogs`` and ``goodWithCats`` of a search's compatibility, as the
    one ``goodWithPets`` filter. Given together they must agree (InvalidInput otherwise)."""
    given = {k: compat[k] for k in OTHER_PETS if compat.get(k) is not None}
    values = set(given.values())
    if len(values) > 1:
        first, *rest = given
        raise InvalidInput(
            [
                FieldError(
                    f"criteria.compatibility.{name}",
                    f"must agree with {first}: both filter on the pet's goodWithPets",
                    "conflict",
                )
                for name in rest
                if given[name] != given[first]
            ]
        )
    return values.pop() if values else None


def flatten_search(body: dict[str, Any]) -> dict[str, Any]:
    """A Search Pets body → the equivalent list query parameters (its links use them).
    ``goodWithDogs``/``goodWithCats`` become ``goodWithPets`` (see OTHER_PETS)."""
    criteria = body.get("criteria", {})
    ages, prices = criteria.get("ageRange", {}), criteria.get("priceRange", {})
    compat, sort = criteria.get("compatibility", {}), body.get("sort", {})
    descending = sort.get("order", "DESC") == "DESC"
    return {
        **body.get("pagination", {}),
        **{k: criteria.get(k) for k in ("species", "status", "size", "gender", "name")},
        "goodWithKids": compat.get("goodWithKids"),
        "goodWithPets": _other_pets(compat),
        "minAge": ages.get("min"),
        "maxAge": ages.get("max"),
        "minPrice": prices.get("min"),
        "maxPrice": prices.get("max"),
        "sort": ("-" if descending else "") + sort.get("field", "createdAt"),
    }
