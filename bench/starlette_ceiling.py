"""Bare Starlette ceiling: the fastest this box can serve our payloads through uvicorn.

Serves the exact bytes our server returned for ``GET /v1/pets`` and ``GET /v1/pets/{id}`` (and a
fixed 201 body of the same shape for ``POST /v1/pets``), read once at start-up from the JSON file
named by ``BENCH_CEILING_PAYLOADS``: ``{"list": str, "item": str, "created": str}``.

Run: ``uvicorn --factory bench.starlette_ceiling:create_app``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

PAYLOADS_ENV = "BENCH_CEILING_PAYLOADS"
JSON = "application/json"


def create_app() -> Starlette:
    payloads: dict[str, str] = json.loads(Path(os.environ[PAYLOADS_ENV]).read_text())
    list_body = payloads["list"].encode()
    item_body = payloads["item"].encode()
    created_body = payloads["created"].encode()

    async def list_pets(_request: Request) -> Response:
        return Response(list_body, media_type=JSON)

    async def get_pet(_request: Request) -> Response:
        return Response(item_body, media_type=JSON)

    async def create_pet(request: Request) -> Response:
        await request.body()
        return Response(created_body, status_code=201, media_type=JSON)

    return Starlette(
        routes=[
            Route("/v1/pets", list_pets, methods=["GET"]),
            Route("/v1/pets", create_pet, methods=["POST"]),
            Route("/v1/pets/{id}", get_pet, methods=["GET"]),
        ]
    )
