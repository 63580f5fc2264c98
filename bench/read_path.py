"""In-process timing of the hot reads (issue 15): ``python -m bench.read_path [N]``.

Seeds nothing: point DATABASE_URL at a database seeded with ``python manage.py seed --pets N``.
Prints the mean per-request ms of GET /v1/pets?limit=20 (default sort), a filtered list, a deep
page, get by id and the inventory through the real app (httpx ASGI transport, validation on),
and the unit-of-work ms of the list alone (the service call, no HTTP).
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import httpx

from app import create_app
from services.catalogue.pets import PetQuery
from services.shared.principal import anonymous
from settings import Settings


async def _timed(n: int, fn: Any) -> float:
    for _ in range(min(50, n)):
        await fn()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(n):
            await fn()
        best = min(best, (time.perf_counter() - start) / n * 1000)
    return best


async def main(n: int) -> None:
    settings = Settings.from_env()
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        first = (await client.get("/v1/pets?limit=1")).json()
        pet_id = first["data"][0]["id"]
        total = first["pagination"]["totalItems"]

        async def get(url: str) -> None:
            r = await client.get(url)
            assert r.status_code == 200, (url, r.status_code, r.text[:200])

        urls = {
            "list ?limit=20": "/v1/pets?limit=20",
            "list status=AVAILABLE": "/v1/pets?limit=20&status=AVAILABLE",
            "list sort=price": "/v1/pets?limit=20&sort=price",
            "list page=40": "/v1/pets?limit=20&page=40",
            "get by id": f"/v1/pets/{pet_id}",
        }
        print(f"pets in the pool: {total}")
        for label, url in urls.items():
            ms = await _timed(n, lambda url=url: get(url))
            print(f"{label:24s} {ms:7.3f} ms/request")
    from models.database import Database
    from services.catalogue import pets

    db = Database(settings.database_url)
    query = PetQuery(limit=20)
    caller = anonymous("")
    ms = await _timed(n, lambda: pets.list_pets(db, caller.tenant, query))
    print(f"{'unit of work (list 20)':24s} {ms:7.3f} ms")
    await db.dispose()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300))
