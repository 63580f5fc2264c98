"""The read cache across processes: real uvicorn servers on the session's database (SQLite or
PostgreSQL) sharing Redis at 127.0.0.1:6379 (a key prefix of their own per test). A write made
through one process is visible on the very next read from another; with Redis down, every
read is fresh (no ETag, no cache) and still correct."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from infra.versions import RedisVersions
from settings import Settings
from tests.conftest import PET, Api, server_process
from tests.servers import free_port

REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_up() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


needs_redis = pytest.mark.skipif(not redis_up(), reason="no Redis at 127.0.0.1:6379")


@pytest.fixture
def prefix() -> Iterator[str]:
    value = f"test-cache-{uuid.uuid4().hex[:12]}:"
    yield value
    if redis_up():
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(f"{value}*"):
            client.delete(key)


class Caller:
    def __init__(self, base: str, tenant: str, token: str) -> None:
        self.base = base
        self.headers = {"X-Tenant-ID": tenant, "Authorization": f"Bearer {token}"}
        self.public = {"X-Tenant-ID": tenant}

    def names(self, **extra: str) -> tuple[list[str], httpx.Response]:
        r = httpx.get(f"{self.base}/pets?limit=50", headers={**self.public, **extra})
        assert r.status_code in (200, 304), r.text
        return ([p["name"] for p in r.json()["data"]] if r.status_code == 200 else []), r

    def rename(self, pet: dict[str, Any], name: str) -> None:
        body = dict(PET.items()) | {"name": name}
        r = httpx.put(f"{self.base}/pets/{pet['id']}", json=body, headers=self.headers)
        assert r.status_code == 200, r.text


def servers(settings: Settings, tmp: Any, stack: ExitStack, count: int, **env: str) -> list[str]:
    return [stack.enter_context(server_process(settings, tmp, 1, **env))[0] for _ in range(count)]


@needs_redis
def test_a_write_through_one_process_is_read_by_the_other_at_once(
    api: Api, settings: Settings, tmp_path: Any, prefix: str
) -> None:
    admin = api.admin_token()
    with ExitStack() as stack:
        one, two = servers(
            settings, tmp_path, stack, 2, REDIS_URL=REDIS_URL, PETSTORE_REDIS_PREFIX=prefix
        )
        a = Caller(one, api.tenant or "", admin)
        b = Caller(two, api.tenant or "", admin)
        created = httpx.post(f"{one}/pets", json={**PET, "name": "v0"}, headers=a.headers)
        assert created.status_code == 201, created.text
        pet = created.json()
        for i in range(1, 11):
            writer, reader = (a, b) if i % 2 else (b, a)
            before, r = reader.names()  # warms the reader's cache
            tag = r.headers["etag"]
            assert reader.names(**{"If-None-Match": tag})[1].status_code == 304
            mine = writer.names()[1].headers["etag"]  # its own links' base: its own tag
            assert writer.names(**{"If-None-Match": mine})[1].status_code == 304
            writer.rename(pet, f"v{i}")
            after, r = reader.names(**{"If-None-Match": tag})
            assert r.status_code == 200
            assert after == [f"v{i}"], (before, after)
            got = httpx.get(f"{reader.base}/pets/{pet['id']}", headers=reader.public)
            assert got.json()["name"] == f"v{i}"


def test_redis_down_reads_are_fresh_and_correct(
    api: Api, settings: Settings, tmp_path: Any
) -> None:
    admin = api.admin_token()
    down = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with ExitStack() as stack:
        # (rate limits off: their counters need Redis too, and answer 500 without it)
        (base,) = servers(settings, tmp_path, stack, 1, REDIS_URL=down, PETSTORE_RATE_LIMIT="0")
        caller = Caller(base, api.tenant or "", admin)
        created = httpx.post(f"{base}/pets", json={**PET, "name": "first"}, headers=caller.headers)
        assert created.status_code == 201, created.text
        names, r = caller.names()
        assert names == ["first"]
        assert "etag" not in r.headers  # no version, no derived tag: nothing to revalidate
        assert r.headers["cache-control"] == "no-cache"
        for i in range(5):
            caller.rename(created.json(), f"n{i}")
            assert caller.names()[0] == [f"n{i}"]


def test_two_workers_without_redis_cache_nothing(
    api: Api, settings: Settings, tmp_path: Any
) -> None:
    """Each worker would miss the other's writes: with several workers and no REDIS_URL the
    read cache is off (still correct, no derived ETag)."""
    admin = api.admin_token()
    with ExitStack() as stack:
        (base,) = [stack.enter_context(server_process(settings, tmp_path, workers=2))[0]]
        caller = Caller(base, api.tenant or "", admin)
        created = httpx.post(f"{base}/pets", json={**PET, "name": "a"}, headers=caller.headers)
        assert created.status_code == 201, created.text
        for i in range(8):
            _names, r = caller.names()
            assert "etag" not in r.headers
            caller.rename(created.json(), f"w{i}")
            assert caller.names()[0] == [f"w{i}"]


@needs_redis
def test_a_lost_redis_counter_never_repeats_a_token(prefix: str) -> None:
    """Redis restarted without its data (or evicted the key): the counter restarts above any
    value it had, so a client's old tag cannot match other data."""

    async def go() -> None:
        versions = RedisVersions(REDIS_URL, prefix)
        try:
            first = await versions.current("t")
            versions.bump(frozenset({"t"}))
            bumped = await versions.current("t")
            assert bumped is not None
            assert bumped != first
            import redis

            client = redis.Redis.from_url(REDIS_URL)
            for key in client.scan_iter(f"{prefix}*"):
                client.delete(key)
            fresh = await versions.current("t")
            assert fresh not in (first, bumped)
            assert fresh is not None
            assert bumped is not None
            assert int(fresh.split(".")[1]) > int(bumped.split(".")[1])
        finally:
            await versions.close()

    asyncio.run(go())


@needs_redis
def test_a_bump_that_failed_is_sent_when_redis_answers_again(prefix: str) -> None:
    """A write committed while this worker could not reach Redis still moves the version: the
    bump is sent first on the worker's next contact."""
    import redis

    async def go() -> None:
        versions = RedisVersions(REDIS_URL, prefix)
        reachable = versions._writer
        try:
            before = await versions.current("t")
            versions._writer = redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
            versions.bump(frozenset({"t"}))  # Redis unreachable for this worker
            assert await versions.current("t") is None  # backing off: read through
            versions._writer = reachable
            versions._down_until = 0.0  # the backoff is over
            after = await versions.current("t")
            assert after is not None
            assert after != before
        finally:
            versions._writer = reachable
            await versions.close()

    asyncio.run(go())
