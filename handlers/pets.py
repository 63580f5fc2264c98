"""Pet operations (tag Pet)."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from connexion import request
from starlette.datastructures import UploadFile
from starlette.responses import Response

from handlers._conditional import cache_headers, derived_etag
from handlers._context import (
    JSON,
    api_base,
    container,
    json_response,
    matches,
    no_content,
    not_modified,
    principal,
    public_caller,
)
from schemas.pets import (
    dump_collection,
    dump_pet,
    etag,
    flatten_search,
    load_pet,
    load_pet_query,
    photo_url,
)
from services.catalogue.cached import query_key
from services.shared.principal import Principal
from web.middleware import QUERY_METHOD_KEY
from web.validators import FORM_SCOPE_KEY


async def _list(
    params: dict[str, Any], conditional: bool = True, raw_query: bytes | None = None
) -> Response:
    """List and Search: an ETag from the tenant's version and the query; a matching
    If-None-Match answers 304 before any query runs (GET and QUERY only: RFC 9110 gives other
    methods 412 for it, so a POST search ignores the header).

    The encoded body is kept in the read cache too, under the tenant's version, the API base
    (its links) and the parameters as received (List Pets: the raw query string, the key
    handlers.fastpath serves repeats from; Search: the parsed criteria): a repeated list skips
    loading the query, dumping and encoding (a hit can only exist for parameters that loaded
    before). Response validation still checks every body sent."""
    pets = container().pets
    caller = await public_caller()
    base = api_base()
    version = await pets.cache.version(caller.tenant)
    body_key = list_key(base, raw_query) if raw_query is not None else search_key(base, params)
    hit = pets.cache.peek(caller.tenant, version, body_key)
    if hit is not None:
        tag, body = hit
    else:
        query = load_pet_query(params)
        tag = (
            None
            if version is None
            else derived_etag(caller.tenant, version, query_key(query), base)
        )
        if tag is not None and conditional and matches(tag):
            return not_modified(cache_headers(tag))
        page = await pets.list(caller, query, at=version)
        body = orjson.dumps(dump_collection(page, base, "/pets", params))
        pets.cache.put(caller.tenant, version, body_key, (tag, body))
    headers = cache_headers(tag)
    if tag is not None and conditional and matches(tag):
        return not_modified(headers)
    return Response(body, media_type=JSON, headers=headers)


def list_key(base: str, raw_query: bytes) -> tuple[str, str, bytes]:
    """List Pets' body in the read cache: the links' base and the query string as sent."""
    return ("pets-list", base, raw_query)


def search_key(base: str, params: dict[str, Any]) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    return ("pets-search", base, tuple(sorted((k, repr(v)) for k, v in params.items())))


async def list_pets(**params: Any) -> Response:
    if "page" not in request.query_params:  # Connexion filled the spec's default in
        params.pop("page", None)  # (a cursor may come only without a page)
    return await _list(params, raw_query=request.scope["query_string"])


async def search_pets(body: dict[str, Any]) -> Response:
    """Its links are the equivalent GET /v1/pets queries (same criteria, other pages)."""
    return await _list(flatten_search(body), conditional=bool(request.scope.get(QUERY_METHOD_KEY)))


async def create_pet(body: dict[str, Any]) -> Response:
    pet = await container().pets.create(principal(), load_pet(body))
    location = f"{api_base()}/pets/{pet.id}"
    return json_response(dump_pet(pet, api_base()), 201, {"Location": location, "ETag": etag(pet)})


async def get_pet(id: uuid.UUID) -> Response:  # noqa: A002 - the spec names it id
    """The pet's own ETag (its version, as If-Match takes it); If-None-Match with it → 304,
    answered from the read cache when the pet is in it. The encoded body is kept there too
    (under the tenant's version, the API base and the id), which handlers.fastpath answers
    repeats from."""
    pets = container().pets
    caller = await public_caller()
    pet_id = uuid.UUID(str(id))
    version = await pets.cache.version(caller.tenant)
    pet = await pets.get(caller, pet_id, at=version)
    headers = cache_headers(etag(pet))
    if matches(headers["ETag"]):
        return not_modified(headers)
    base = api_base()
    body = orjson.dumps(dump_pet(pet, base))
    pets.cache.put(caller.tenant, version, pet_body_key(base, str(pet_id)), (headers["ETag"], body))
    return Response(body, media_type=JSON, headers=headers)


def pet_body_key(base: str, pet_id: str) -> tuple[str, str, str]:
    """Get Pet's body in the read cache: the links' base and the id as written in the path."""
    return ("pet-body", base, pet_id)


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
        principal(), pet_id, load_pet(body), _if_match_versions(pet_id)
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
    url = photo_url(str(id), stored.name, api_base())
    body = {"code": 201, "type": "image", "message": url}
    return json_response(body, 201, {"Location": url})


_IMAGE_CACHE = "public, max-age=31536000, immutable"
_TENANT_IMAGE_CACHE = "private, max-age=31536000, immutable"  # never from a shared cache


def _image_cache(caller: Principal) -> str:
    """The shared pool's images are public; a tenant's are read with its X-Tenant-ID or token,
    so no shared cache (CDN, proxy) may hand them to anyone else."""
    return _IMAGE_CACHE if not caller.tenant else _TENANT_IMAGE_CACHE


async def get_pet_image(id: uuid.UUID, imageName: str) -> Response:  # noqa: A002, N803
    images = container().images
    pet_id = uuid.UUID(str(id))
    caller = await public_caller()
    tags = request.headers.get("if-none-match")
    if tags:
        found = await images.open(caller, pet_id, imageName, body=False)
        tag = f'"{found.digest}"'
        if tag in {t.strip().removeprefix("W/") for t in tags.split(",")} or tags == "*":
            return Response(
                status_code=304, headers={"ETag": tag, "Cache-Control": _image_cache(caller)}
            )
    image = await images.open(caller, pet_id, imageName)
    return Response(
        image.data,
        media_type=image.content_type,
        headers={
            "ETag": f'"{image.digest}"',
            "Cache-Control": _image_cache(caller),
            "X-Content-Type-Options": "nosniff",
        },
    )
