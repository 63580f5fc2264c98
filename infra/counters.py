"""Fixed-window counters: in-process (one worker) or Redis (shared by every worker).

Redis unreachable (down, restarting, a network cut): the budgets and throttles do not fail the
request (a 500 on every call) and do not go away (free logins while Redis is down). The Redis
store counts in this worker's memory instead (``MemoryCounterStore``: every worker keeps its own
budget, so a client may get up to ``workers`` times its budget while it lasts), logs the outage
once per backoff, and asks Redis again after ``BACKOFF_SECONDS``, so a dead Redis costs no connect
attempt per request. ``/readyz`` reports Redis ``unavailable`` meanwhile (``ping`` raises).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from typing import Any

log = logging.getLogger("petstore.counters")
TIMEOUT_SECONDS = 0.5
BACKOFF_SECONDS = 2.0


class MemoryCounterStore:
    """Counters of one worker. Windows expire lazily: a heap orders them by expiry, and each
    call first drops the windows that have ended (each key is visited once per window it
    opened, so an increment costs O(log n) amortized however many keys are live; it never
    rescans them all)."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._counts: dict[str, tuple[int, float]] = {}
        self._expiries: list[tuple[float, str]] = []  # heap: (window end, key)
        self._lock = asyncio.Lock()
        self.visited = 0
        """Heap entries examined by expiry so far (tests: the work per call stays bounded)."""

    def _expire(self) -> None:
        now = self._clock()
        heap = self._expiries
        while heap and heap[0][0] <= now:
            expires, key = heapq.heappop(heap)
            self.visited += 1
            entry = self._counts.get(key)
            if entry is not None and entry[1] == expires:  # not a window cleared and reopened
                del self._counts[key]

    def _live(self, key: str) -> tuple[int, float] | None:
        self._expire()
        return self._counts.get(key)

    async def increment(self, key: str, window_seconds: int) -> tuple[int, int]:
        async with self._lock:
            entry = self._live(key)
            if entry is None:
                entry = (0, self._clock() + window_seconds)
                heapq.heappush(self._expiries, (entry[1], key))
            entry = (entry[0] + 1, entry[1])
            self._counts[key] = entry
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

    async def ping(self) -> None:
        """Reachable (always, in process)."""

    def __len__(self) -> int:
        return len(self._counts)

    async def close(self) -> None:
        self._counts.clear()
        self._expiries.clear()


_DECR_IF_POSITIVE = """
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
if v > 0 then return redis.call('DECR', KEYS[1]) end
return 0
"""


class RedisCounterStore:
    """INCR + EXPIRE NX in one round trip; the TTL is the window's remaining time. Falls back to
    this worker's memory while Redis cannot be reached (see the module's doc)."""

    def __init__(self, url: str, prefix: str = "petstore:") -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(
            url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS
        )
        self._prefix = prefix
        self.fallback = MemoryCounterStore()
        self._down_until = 0.0

    def _up(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self) -> None:
        self._down_until = time.monotonic() + BACKOFF_SECONDS
        log.warning(
            "counters: Redis unreachable; counting in this worker for %.0f s",
            BACKOFF_SECONDS,
            exc_info=True,
        )

    async def increment(self, key: str, window_seconds: int) -> tuple[int, int]:
        if self._up():
            full = self._prefix + key
            try:
                pipe = self._redis.pipeline(transaction=True)
                pipe.incr(full)
                pipe.expire(full, window_seconds, nx=True)
                pipe.ttl(full)
                count, _, ttl = await pipe.execute()
                return int(count), max(int(ttl), 1)
            except _UNREACHABLE:
                self._failed()
        return await self.fallback.increment(key, window_seconds)

    async def peek(self, key: str) -> tuple[int, int]:
        if self._up():
            full = self._prefix + key
            try:
                pipe = self._redis.pipeline(transaction=False)
                pipe.get(full)
                pipe.ttl(full)
                value, ttl = await pipe.execute()
                return (int(value), max(int(ttl), 1)) if value is not None else (0, 0)
            except _UNREACHABLE:
                self._failed()
        return await self.fallback.peek(key)

    async def clear(self, key: str) -> None:
        await self.fallback.clear(key)
        if self._up():
            try:
                await self._redis.delete(self._prefix + key)
            except _UNREACHABLE:
                self._failed()

    async def decrement(self, key: str) -> None:
        await self.fallback.decrement(key)
        if self._up():
            try:
                # Only while the key lives and stays positive (a lone DECR would make it -1).
                await self._redis.eval(_DECR_IF_POSITIVE, 1, self._prefix + key)
            except _UNREACHABLE:
                self._failed()

    async def ping(self) -> None:
        """Raises when Redis cannot be reached (readiness: never falls back)."""
        await self._redis.ping()

    async def close(self) -> None:
        await self._redis.aclose()
        await self.fallback.close()


def _unreachable() -> tuple[type[BaseException], ...]:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return (RedisConnectionError, RedisTimeoutError, OSError)


_UNREACHABLE = _unreachable()
