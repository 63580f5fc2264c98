"""Pet operations (tag Pet)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from connexion import request
from starlette.datastructures import UploadFile
from starlette.responses import Response

from handlers._context import (
    api_base,
    container,
    json_response,
    no_content,
    principal,
)
from schemas.pets import dump_collection, dump_pet, etag
from services.catalogue import pets as service
from web.validators import FORM_SCOPE_KEY

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


def _pet_data(body: dict[str, Any]) -> service.PetData:
    """Writable fields only: readOnly fields (id, createdAt, links, ...) are ignored."""
    values = {_FIELDS.get(k, k): v for k, v in body.items()}
    values = {k: v for k, v in values.items() if k in _WRITABLE}
    values["price"] = Decimal(values["price"])
    return service.PetData(**values)


def _tuple(value: Any) -> tuple[str, ...]:
    return tuple(value) if value else ()


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _pet_query(params: dict[str, Any]) -> service.PetQuery:
    """The list's query parameters (or a search body flattened into them) → PetQuery."""
    sort = params.get("sort") or "-createdAt"
    return service.PetQuery(
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


def _flatten_search(body: dict[str, Any]) -> dict[str, Any]:
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


async def list_pets(**params: Any) -> Response:
    page = await container().pets.list(principal(), _pet_query(params))
    return json_response(dump_collection(page, api_base(), "/pets", params))


async def search_pets(body: dict[str, Any]) -> Response:
    """Its links are the equivalent GET /v1/pets queries (same criteria, other pages)."""
    params = _flatten_search(body)
    page = await container().pets.list(principal(), _pet_query(params))
    return json_response(dump_collection(page, api_base(), "/pets", params))


async def create_pet(body: dict[str, Any]) -> Response:
    pet = await container().pets.create(principal(), _pet_data(body))
    location = f"{api_base()}/pets/{pet.id}"
    return json_response(dump_pet(pet, api_base()), 201, {"Location": location, "ETag": etag(pet)})


async def get_pet(id: uuid.UUID) -> Response:  # noqa: A002 - the spec names it id
    pet = await container().pets.get(principal(), uuid.UUID(str(id)))
    return json_response(dump_pet(pet, api_base()), headers={"ETag": etag(pet)})


def _if_match_versions(pet_id: uuid.UUID) -> frozenset[int] | None:
    """Versions accepted by If-Match; None when absent or '*'. Tags of another pet match none."""
    header = request.headers.get("if-match")
    if header is None or header.strip() == "*":
        return None
    versions = set()
    for tag in header.split(","):
        tag = tag.strip().removeprefix("W/").strip('"')
        prefix, _, version = tag.rpartition("-")
        if prefix == pet_id.hex[-12:] and version.isdigit():
            versions.add(int(version))
    return frozenset(versions)


async def update_pet(id: uuid.UUID, body: dict[str, Any]) -> Response:  # noqa: A002
    pet_id = uuid.UUID(str(id))
    pet = await container().pets.replace(
        principal(), pet_id, _pet_data(body), _if_match_versions(pet_id)
    )
    return json_response(dump_pet(pet, api_base()), headers={"ETag": etag(pet)})


async def delete_pet(id: uuid.UUID) -> Response:  # noqa: A002
    await container().pets.delete(principal(), uuid.UUID(str(id)))
    return no_content()


async def upload_pet_image(id: uuid.UUID, **_form: Any) -> Response:  # noqa: A002
    """The form was parsed while it streamed in (web.validators.StreamingMultiPartValidator)."""
    form = request.scope.get(FORM_SCOPE_KEY)
    part = form.get("file") if form is not None else None
    upload = part if isinstance(part, UploadFile) else None
    try:
        stored = await container().images.upload(
            principal(),
            uuid.UUID(str(id)),
            upload.file if upload else None,
            upload.headers.get("content-type") if upload else None,
        )
    finally:
        if form is not None:
            await form.close()
    url = f"{api_base()}/{stored.path}"
    body = {"code": 201, "type": "image", "message": url}
    return json_response(body, 201, {"Location": url})


_IMAGE_CACHE = "public, max-age=31536000, immutable"


async def get_pet_image(id: uuid.UUID, imageName: str) -> Response:  # noqa: A002, N803
    images = container().images
    pet_id = uuid.UUID(str(id))
    tags = request.headers.get("if-none-match")
    if tags:
        found = await images.open(pet_id, imageName, body=False)
        tag = f'"{found.digest}"'
        if tag in {t.strip().removeprefix("W/") for t in tags.split(",")} or tags == "*":
            return Response(status_code=304, headers={"ETag": tag, "Cache-Control": _IMAGE_CACHE})
    image = await images.open(pet_id, imageName)
    return Response(
        image.data,
        media_type=image.content_type,
        headers={
            "ETag": f'"{image.digest}"',
            "Cache-Control": _IMAGE_CACHE,
            "X-Content-Type-Options": "nosniff",
        },
    )
