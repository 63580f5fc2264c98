"""The read cache's versions in Redis, shared by every worker (services.shared.readcache).

One counter per tenant (``<prefix>v:t:<tenant>``) and one for changes that name no tenant
(``<prefix>v:all``). A write INCRs after its commit, from the unit of work's thread (a
synchronous client), before the request answers; a cached read GETs both (one MGET round trip).
So a read that starts after a write's response, on any worker, sees the bumped version.

A missing counter (Redis restarted without persistence, or evicted the key) is created at the
current time in microseconds, above any value the counter can have reached before (it grows by
one per write), so a token handed out before never comes back for other data.

Redis unreachable: ``current`` answers None (no caching; the worker drops its cached results)
and stops asking for a second, so a dead Redis costs no connect attempt per request. A bump that
fails is kept and sent again first on this worker's next contact with Redis (its next read or
write), so a write made during an outage still moves the version once Redis is back."""

from __future__ import annotations

import logging
import threading
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
        self._pending: set[str] = set()  # bumps that failed, sent again on the next contact
        self._lock = threading.Lock()

    def _key(self, tenant: str) -> str:
        return f"{self._prefix}v:t:{tenant}"

    async def current(self, tenant: str) -> str | None:
        if time.monotonic() < self._down_until:
            return None
        keys = (self._all, self._key(tenant))
        try:
            if self._pending:
                await self._resend()
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

    async def _resend(self) -> None:
        with self._lock:
            keys, self._pending = self._pending, set()
        try:
            start = _start()
            pipe = self._reader.pipeline(transaction=False)
            for key in sorted(keys):
                pipe.set(key, start, nx=True)
                pipe.incr(key)
            await pipe.execute()
        except Exception:
            with self._lock:
                self._pending |= keys
            raise

    def bump(self, tenants: frozenset[object]) -> None:
        keys = {self._key(t) if isinstance(t, str) else self._all for t in tenants}
        with self._lock:
            if time.monotonic() < self._down_until:  # known down: no timeout in the writer
                self._pending |= keys
                return
            keys |= self._pending
            self._pending = set()
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
                    # Readers reach the same Redis: while it is down they cache nothing. Sent
                    # again on the next contact; the cache's TTL bounds the rest.
                    with self._lock:
                        self._pending |= keys
                    self._down_until = time.monotonic() + BACKOFF_SECONDS
                    log.error("read cache: version bump failed", exc_info=True)

    async def close(self) -> None:
        await self._reader.aclose()
        self._writer.close()
