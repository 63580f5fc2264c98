"""A cache of hot read results that stays correct: every entry is keyed by its tenant's version.

Each tenant has a version token. Every write unit of work that changes a watched row (a pet:
created, replaced, deleted, held or released by an order, photographed...) bumps the versions of
the tenants it changed, after its commit and before it returns (``Database.watch``: one place,
below every write path). A read first takes the current version, then looks up
``(tenant, version, key)``; a bumped version makes every older entry unreachable (they age out
of the LRU). A read that raced a write may store newer data under the older version, never older
data under the newer one, because the bump follows the commit.

Versions live in this process (``MemoryVersions``, one worker) or in Redis
(``infra.versions.RedisVersions``, shared by every worker: an INCR per write, a GET per cached
read). When the versions cannot be read (Redis down, several workers without Redis) ``current``
answers None and the caller reads the database: no caching, never stale.

The cached values are the services' results (pets, pages, inventories), shared read-only
between requests and protocols (REST and GraphQL both read through it)."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
log = logging.getLogger("petstore.cache")

ALL = "*"
"""The version every tenant's token includes: bumped by a change that names no tenant."""


class Versions(Protocol):
    async def current(self, tenant: str) -> str | None:
        """The tenant's version token, or None when it cannot be known (do not cache)."""

    def bump(self, tenants: frozenset[object]) -> None:
        """After a commit, from the unit of work's thread: the tenants changed (a non-str
        member, such as ``ALL_TENANTS``, bumps every tenant). Never raises."""


class MemoryVersions:
    """Versions of one process. Start from the clock (microseconds), so a restarted process never
    hands out a token an earlier process gave to a client for other data."""

    def __init__(self) -> None:
        self._start = time.time_ns() // 1000
        self._versions: dict[str, int] = {}
        self._lock = threading.Lock()

    async def current(self, tenant: str) -> str | None:
        versions = self._versions
        return f"{self._start}.{versions.get(ALL, 0)}.{versions.get(tenant, 0)}"

    def bump(self, tenants: frozenset[object]) -> None:
        with self._lock:
            for tenant in tenants:
                key = tenant if isinstance(tenant, str) else ALL
                self._versions[key] = self._versions.get(key, 0) + 1


class DisabledVersions:
    """No shared versions (several workers without Redis): nothing is cached."""

    async def current(self, tenant: str) -> str | None:
        return None

    def bump(self, tenants: frozenset[object]) -> None:
        pass


class ReadCache:
    """Bounded LRU of read results with a time-to-live (the TTL only bounds what no version
    sees: a write made outside the server, such as ``manage.py seed``). Used from the event
    loop only; ``versions`` is bumped from the units of work's threads."""

    def __init__(self, versions: Versions, max_entries: int = 256, ttl_seconds: float = 60.0):
        self.versions = versions
        self.max_entries = max_entries
        self.ttl = ttl_seconds
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0

    async def version(self, tenant: str) -> str | None:
        """The tenant's version; None (read through) when it cannot be known, and then the
        cached results go too: writes made meanwhile may not have moved the version."""
        if not self.enabled:
            return None
        version = await self.versions.current(tenant)
        if version is None and self._entries:
            self._entries.clear()
        return version

    async def get_or_load(
        self,
        tenant: str,
        version: str | None,
        key: Hashable,
        load: Callable[[], Awaitable[T]],
    ) -> T:
        """The cached result for ``key`` at ``version``, or ``load()``'s (stored; exceptions
        are not). ``version`` None: always load, store nothing."""
        if version is None or not self.enabled:
            return await load()
        full = (tenant, version, key)
        entries = self._entries
        entry = entries.get(full)
        now = time.monotonic()
        if entry is not None and entry[0] > now:
            entries.move_to_end(full)
            self.hits += 1
            value: T = entry[1]
            return value
        self.misses += 1
        value = await load()
        self.put(tenant, version, key, value)
        return value

    def put(self, tenant: str, version: str | None, key: Hashable, value: Any) -> None:
        """Store ``value`` (computed by the caller at ``version``); nothing when None."""
        if version is None or not self.enabled:
            return
        full = (tenant, version, key)
        entries = self._entries
        entries[full] = (time.monotonic() + self.ttl, value)
        entries.move_to_end(full)
        while len(entries) > self.max_entries:
            entries.popitem(last=False)

    def peek(self, tenant: str, version: str | None, key: Hashable) -> Any | None:
        """The cached result, if any, without loading (for a conditional request)."""
        if version is None:
            return None
        entry = self._entries.get((tenant, version, key))
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1]

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
