"""Pet ↔ #/components/schemas/Pet and PetCollection; list and search queries → PetQuery."""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import orjson
from marshmallow import fields

from models import Pet
from models.enums import PetStatus
from schemas.common import collection_links, page_meta, put_optional, query_value, timestamp
from schemas.loading import Bool, Int, LoadSchema, Money, Obj, Str, load
from services.catalogue.pets import PetData, PetQuery
from services.catalogue.reads import Keyset, PetRecord
from services.shared.errors import FieldError, InvalidCursor, InvalidInput
from services.shared.pagination import Page

AnyPet = Pet | PetRecord
"""What the dump functions take: a record of the read path or a model a write returned."""


def dump_pet(pet: AnyPet, api_base: str) -> dict[str, Any]:
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


def etag(pet: AnyPet) -> str:
    return f'"{pet.id.hex[-12:]}-{pet.version}"'


def dump_collection(
    page: Page[PetRecord], api_base: str, path: str, params: dict[str, Any]
) -> dict[str, Any]:
    """The page with its links; ``links.next`` is a keyset cursor link when there is a next
    page (following it reads an index range, whatever the depth), ``self`` keeps the caller's
    cursor; ``first``, ``prev`` and ``last`` are page numbers."""
    cursor = params.get("cursor")
    params = {k: v for k, v in params.items() if k != "cursor"}
    links = collection_links(page, api_base, path, params)
    links.pop("next", None)
    if isinstance(page.after, Keyset):
        links["next"] = cursor_link(page, api_base, path, params, encode_cursor(page.after))
    if cursor:
        links["self"] = cursor_link(page, api_base, path, params, cursor)
    return {
        "data": [dump_pet(p, api_base) for p in page.items],
        "pagination": page_meta(page),
        "links": links,
    }


def cursor_link(
    page: Page[Any], api_base: str, path: str, params: dict[str, Any], cursor: str
) -> str:
    query = {
        k: query_value(v)
        for k, v in params.items()
        if v is not None and v != [] and k not in ("page", "limit", "cursor")
    }
    query.update(limit=page.limit, cursor=cursor)
    return f"{api_base}{path}?{urlencode(query, doseq=True)}"


CURSOR_MAX = 512
_MONEY = re.compile(r"^-?\d{1,8}(\.\d{1,2})?$")


def encode_cursor(keyset: Keyset) -> str:
    """base64url (unpadded) of a small JSON object: version, sort, sort value, id, page. Not
    signed: a cursor grants nothing, it is only a position in the caller's own tenant's list,
    so it is validated on the way in (decode_cursor) instead."""
    value: Any = keyset.value
    if isinstance(value, datetime):
        value = value.isoformat()
    elif isinstance(value, Decimal):
        value = f"{value:.2f}"
    sort = ("-" if keyset.descending else "") + keyset.sort
    raw = orjson.dumps({"v": 1, "s": sort, "k": value, "i": keyset.id.hex, "p": keyset.page})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _sort_value(sort: str, value: Any) -> Any:
    """The cursor's sort value as the column holds it; raises ValueError if it cannot be."""
    if sort in ("createdAt", "updatedAt"):
        if not isinstance(value, str):
            raise ValueError
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError
        return moment
    if sort == "price":
        if not isinstance(value, str) or not _MONEY.match(value):
            raise ValueError
        return Decimal(value)
    if sort == "ageMonths":
        if type(value) is not int or not 0 <= value <= 600:
            raise ValueError
        return value
    if not isinstance(value, str) or not 1 <= len(value) <= 50:
        raise ValueError
    return value


def decode_cursor(cursor: str) -> Keyset:
    """A cursor encode_cursor made → its Keyset. Anything else (malformed, altered, made for an
    unknown sort) raises InvalidCursor (400 naming ``cursor``)."""
    try:
        if len(cursor) > CURSOR_MAX:
            raise ValueError
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = orjson.loads(raw)
        if not isinstance(data, dict) or set(data) != {"v", "s", "k", "i", "p"} or data["v"] != 1:
            raise ValueError
        sort, page = data["s"], data["p"]
        if not isinstance(sort, str) or sort.lstrip("-") not in SORTS:
            raise ValueError
        if type(page) is not int or not 2 <= page <= 1_000_000_000:
            raise ValueError
        if not isinstance(data["i"], str) or len(data["i"]) != 32:
            raise ValueError
        pet_id = uuid.UUID(hex=data["i"])
        value = _sort_value(sort.lstrip("-"), data["k"])
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise InvalidCursor(
            "not a cursor this server issued; follow links.next or start again without it"
        ) from None
    return Keyset(sort.lstrip("-"), sort.startswith("-"), value, pet_id, page)


SORTS = ("name", "ageMonths", "price", "createdAt", "updatedAt")


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
    cursor = Str()


_QUERY = PetQuerySchema()


def load_pet_query(params: dict[str, Any]) -> PetQuery:
    """The list's query parameters (or a search body flattened into them) → PetQuery. Absent
    and null values take the command's defaults (PageRequest owns the page's)."""
    values = load(_QUERY, {k: v for k, v in params.items() if v is not None})
    sort = values.pop("sort", None) or "-createdAt"
    cursor = values.pop("cursor", None)
    after = None
    if cursor is not None:
        if "page" in values:
            raise InvalidCursor("give either page or cursor, not both")
        after = decode_cursor(cursor)
    for key in ("species", "status", "size", "gender"):
        if key in values:
            values[key] = tuple(values[key])
    return PetQuery(**values, sort=sort.lstrip("-"), descending=sort.startswith("-"), after=after)


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
