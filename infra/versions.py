"""The read cache's versions in Redis, shared by every worker (services.shared.readcache).

One counter per tenant (``<prefix>v:t:<tenant>``) and one for changes that name no tenant
(``<prefix>v:all``). A write INCRs after its commit, from the unit of work's thread (a
synchronous client), before the request answers; a cached read GETs both (one MGET round trip).
So a read that starts after a write's response, on any worker, sees the bumped version.

A missing counter (Redis restarted without persistence, or evicted the key) is created at the
current time in microseconds, above any value the counter can have reached before (it grows by
one per write), so a token handed out before never comes back for other data.

Redis unreachable: ``current`` answers None (no caching, never stale) and stops asking for a
second, so a dead Redis costs no connect attempt per request."""

from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger("petstore.cache")
TIMEOUT_SECONDS = 0.5
BACKOFF_SECONDS = 1.0


def _start() -> int:
    return time.time_ns() // 1000


class RedisVersions:
    def __init__(self, url: str, prefix: str = "petstore:") -> None:
        from redis import Redis
        from redis.asyncio import Redis as AsyncRedis

        options: dict[str, Any] = {
            "socket_timeout": TIMEOUT_SECONDS,
            "socket_connect_timeout": TIMEOUT_SECONDS,
        }
        self._reader = AsyncRedis.from_url(url, **options)
        self._writer = Redis.from_url(url, **options)
        self._prefix = prefix
        self._all = f"{prefix}v:all"
        self._down_until = 0.0

    def _key(self, tenant: str) -> str:
        return f"{self._prefix}v:t:{tenant}"

    async def current(self, tenant: str) -> str | None:
        if time.monotonic() < self._down_until:
            return None
        keys = (self._all, self._key(tenant))
        try:
            values = await self._reader.mget(keys)
            if None in values:
                start = _start()
                pipe = self._reader.pipeline(transaction=False)
                for key in keys:
                    pipe.set(key, start, nx=True)
                pipe.mget(keys)
                values = (await pipe.execute())[-1]
        except Exception:
            self._down_until = time.monotonic() + BACKOFF_SECONDS
            log.warning("read cache: Redis unreachable, reading through", exc_info=True)
            return None
        return ".".join(v.decode() if isinstance(v, bytes) else str(v) for v in values)

    def bump(self, tenants: frozenset[object]) -> None:
        keys = {self._key(t) if isinstance(t, str) else self._all for t in tenants}
        for attempt in (1, 2):
            try:
                start = _start()
                pipe = self._writer.pipeline(transaction=False)
                for key in sorted(keys):
                    pipe.set(key, start, nx=True)
                    pipe.incr(key)
                pipe.execute()
                return
            except Exception:
                if attempt == 2:
                    # Readers reach the same Redis: while it is down they cache nothing; the
                    # cache's TTL bounds a lone failed INCR on a Redis that answers others.
                    log.error("read cache: version bump failed", exc_info=True)

    async def close(self) -> None:
        await self._reader.aclose()
        self._writer.close()
