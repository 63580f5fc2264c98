"""Fixed-window counters: in-process (one worker) or Redis (shared by every worker)."""

from __future__ import annotations

import asyncio
import time
from typing import Any


class MemoryCounterStore:
    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._counts: dict[str, tuple[int, float]] = {}
        self._lock = asyncio.Lock()

    def _live(self, key: str) -> tuple[int, float] | None:
        entry = self._counts.get(key)
        if entry is not None and entry[1] <= self._clock():
            del self._counts[key]
            return None
        return entry

    async def increment(self, key: str, window_seconds: int) -> tuple[int, int]:
        async with self._lock:
            entry = self._live(key)
            if entry is None:
                entry = (0, self._clock() + window_seconds)
            entry = (entry[0] + 1, entry[1])
            self._counts[key] = entry
            if len(self._counts) > 100_000:
                self._sweep()
            return entry[0], max(int(entry[1] - self._clock() + 0.999), 1)

    async def peek(self, key: str) -> tuple[int, int]:
        entry = self._live(key)
        if entry is None:
            return 0, 0
        return entry[0], max(int(entry[1] - self._clock() + 0.999), 1)

    async def clear(self, key: str) -> None:
        self._counts.pop(key, None)

    async def decrement(self, key: str) -> None:
        async with self._lock:
            entry = self._live(key)
            if entry is not None and entry[0] > 0:
                self._counts[key] = (entry[0] - 1, entry[1])

    def _sweep(self) -> None:
        now = self._clock()
        for key in [k for k, (_, exp) in self._counts.items() if exp <= now]:
            del self._counts[key]

    async def close(self) -> None:
        self._counts.clear()


_DECR_IF_POSITIVE = """
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
if v > 0 then return redis.call('DECR', KEYS[1]) end
return 0
"""


class RedisCounterStore:
    """INCR + EXPIRE NX in one round trip; the TTL is the window's remaining time."""

    def __init__(self, url: str, prefix: str = "petstore:") -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(url)
        self._prefix = prefix

    async def increment(self, key: str, window_seconds: int) -> tuple[int, int]:
        full = self._prefix + key
        pipe = self._redis.pipeline(transaction=True)
        pipe.incr(full)
        pipe.expire(full, window_seconds, nx=True)
        pipe.ttl(full)
        count, _, ttl = await pipe.execute()
        return int(count), max(int(ttl), 1)

    async def peek(self, key: str) -> tuple[int, int]:
        full = self._prefix + key
        pipe = self._redis.pipeline(transaction=False)
        pipe.get(full)
        pipe.ttl(full)
        value, ttl = await pipe.execute()
        return (int(value), max(int(ttl), 1)) if value is not None else (0, 0)

    async def clear(self, key: str) -> None:
        await self._redis.delete(self._prefix + key)

    async def decrement(self, key: str) -> None:
        # Only while the key lives and stays positive (a lone DECR would create it at -1).
        await self._redis.eval(_DECR_IF_POSITIVE, 1, self._prefix + key)

    async def close(self) -> None:
        await self._redis.aclose()
