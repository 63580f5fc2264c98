"""Pet ↔ #/components/schemas/Pet and PetCollection."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from marshmallow import Schema, fields

from models import Pet
from schemas.common import Timestamp, tenant_or_none
from services.pagination import Page


class PetSchema(Schema):
    id = fields.UUID()
    name = fields.String()
    species = fields.String()
    breed = fields.String(allow_none=True)
    ageMonths = fields.Integer(attribute="age_months")
    size = fields.String()
    color = fields.String()
    gender = fields.String()
    goodWithKids = fields.Boolean(attribute="good_with_kids")
    goodWithPets = fields.Boolean(attribute="good_with_pets")
    price = fields.Decimal(as_string=True, places=2)
    currency = fields.String()
    description = fields.String()
    status = fields.String()
    photos = fields.List(fields.String())
    medicalInfo = fields.Dict(attribute="medical_info")
    tenantId = fields.Function(tenant_or_none)
    createdAt = Timestamp(attribute="created_at")
    updatedAt = Timestamp(attribute="updated_at")


_pet_schema = PetSchema()
_OPTIONAL = (
    "breed",
    "size",
    "color",
    "gender",
    "goodWithKids",
    "goodWithPets",
    "description",
    "medicalInfo",
)


def dump_pet(pet: Pet, api_base: str) -> dict[str, Any]:
    data: dict[str, Any] = _pet_schema.dump(pet)
    for key in _OPTIONAL:  # absent rather than null: the spec's optional fields are not nullable
        if data.get(key) is None:
            data.pop(key, None)
    data["links"] = {"self": f"{api_base}/pets/{pet.id}"}
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
