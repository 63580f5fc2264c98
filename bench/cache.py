"""In-process timing of the read cache: ``.venv/bin/python -m bench.cache`` (repository root).

A fresh SQLite database with ``BENCH_PETS`` (default 1,000) synthetic pets in the shared pool;
the app built by ``create_app`` and called through httpx's ASGI transport (no sockets, one
client, sequential requests), request and response validation on unless said otherwise. For each
configuration: ``BENCH_REQUESTS`` (default 1,000) calls after a warm-up; mean ms and req/s.

- list uncached (PETSTORE_READ_CACHE_SIZE=0), list cached (in-process versions), list cached
  with the versions in Redis (``REDIS_URL``, default redis://127.0.0.1:6379/0, skipped if down),
  list answered 304 (If-None-Match), the same with response validation off; get pet likewise.
- The version check alone (``ReadCache.version``): in process and one Redis MGET.

Reports; never fails on numbers."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from app import create_app
from manage import migrate, seed_pets
from settings import Settings

PETS = int(os.environ.get("BENCH_PETS", 1000))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", 1000))
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def settings_for(var: Path, **env: str) -> Settings:
    return Settings.from_env(
        {
            "PETSTORE_VAR_DIR": str(var),
            "DATABASE_URL": f"sqlite:///{var}/bench.db",
            "PETSTORE_JWT_SECRET": "bench-secret-that-is-long-enough-for-hs256",
            "PETSTORE_RATE_LIMIT": "0",
            "PETSTORE_WEBHOOK_WORKER": "0",
            "PETSTORE_LOG_LEVEL": "WARNING",
            "PETSTORE_ALLOWED_HOSTS": "bench",
            **env,
        }
    )


async def timed(call: Callable[[], Awaitable[Any]], n: int) -> float:
    """Mean seconds per call after a warm-up of n/10 calls."""
    for _ in range(max(n // 10, 10)):
        await call()
    start = time.perf_counter()
    for _ in range(n):
        await call()
    return (time.perf_counter() - start) / n


def row(label: str, seconds: float) -> None:
    print(f"  {label:<58} {seconds * 1000:7.3f} ms  {1 / seconds:8.0f} req/s", flush=True)


async def requests(settings: Settings, label: str, pet_id: str) -> None:
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

        async def list_pets(headers: dict[str, str] | None = None) -> httpx.Response:
            r = await client.get("/v1/pets?limit=20", headers=headers)
            assert r.status_code in (200, 304), r.text
            return r

        tag = (await list_pets()).headers.get("etag")
        row(f"{label}: GET /v1/pets?limit=20", await timed(list_pets, REQUESTS))
        if tag:
            conditional = {"If-None-Match": tag}
            assert (await list_pets(conditional)).status_code == 304
            seconds = await timed(lambda: list_pets(conditional), REQUESTS)
            row(f"{label}: GET /v1/pets?limit=20 → 304", seconds)

        async def get_pet() -> httpx.Response:
            r = await client.get(f"/v1/pets/{pet_id}")
            assert r.status_code == 200, r.text
            return r

        row(f"{label}: GET /v1/pets/{{id}}", await timed(get_pet, REQUESTS))
        cache = app.container.cache  # type: ignore[attr-defined]
        row(f"{label}: version check alone", await timed(lambda: cache.version(""), REQUESTS * 5))
        await app.container.close()  # type: ignore[attr-defined]


def redis_up() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="petstore-cache-bench-") as tmp:
        var = Path(tmp)
        base = settings_for(var)
        migrate(base)
        seed_pets(base, PETS)
        import sqlite3

        with sqlite3.connect(var / "bench.db") as conn:
            pet_id = str(uuid.UUID(conn.execute("SELECT id FROM pets LIMIT 1").fetchone()[0]))
        print(f"{PETS} pets, {REQUESTS} sequential requests per row, in process (python "
              f"{sys.version.split()[0]}, load avg {os.getloadavg()[0]:.1f})")  # fmt: skip
        configs: list[tuple[str, dict[str, str]]] = [
            ("uncached", {"PETSTORE_READ_CACHE_SIZE": "0"}),
            ("cached, in-process versions", {}),
            ("cached, response validation off", {"PETSTORE_VALIDATE_RESPONSES": "0"}),
            ("uncached, response validation off", {
                "PETSTORE_READ_CACHE_SIZE": "0", "PETSTORE_VALIDATE_RESPONSES": "0"}),
        ]  # fmt: skip
        if redis_up():
            prefix = f"bench-cache-{uuid.uuid4().hex[:8]}:"
            redis_env = {"REDIS_URL": REDIS_URL, "PETSTORE_REDIS_PREFIX": prefix}
            configs.append(("cached, Redis versions", redis_env))
        else:
            print(f"  (no Redis at {REDIS_URL}: the Redis row is skipped)")
        for label, env in configs:
            asyncio.run(requests(settings_for(var, **env), label, pet_id))


if __name__ == "__main__":
    main()
