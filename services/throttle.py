"""Counting failures per key in a time window (login throttling). The store is injected:
in-process by default, Redis when configured (infra/counters.py)."""

from __future__ import annotations

from typing import Protocol

from services.errors import TooManyAttempts


class CounterStore(Protocol):
    async def increment(self, key: str, window_seconds: int) -> tuple[int, int]:
        """Add one to ``key``'s count in the current window; return (count, seconds to reset)."""

    async def peek(self, key: str) -> tuple[int, int]:
        """Return (count, seconds to reset) without changing it."""

    async def clear(self, key: str) -> None: ...


class FailureThrottle:
    """After ``max_failures`` failures for a key within ``window_seconds``, refuse until the
    window ends."""

    def __init__(self, store: CounterStore, max_failures: int, window_seconds: int) -> None:
        self.store = store
        self.max_failures = max_failures
        self.window_seconds = window_seconds

    async def check(self, *keys: str, factor: int = 1) -> None:
        """Raise TooManyAttempts if any key reached ``factor`` times max_failures in the window."""
        limit = self.max_failures * factor
        for key in keys:
            count, reset = await self.store.peek(key)
            if limit and count >= limit:
                raise TooManyAttempts(retry_after=max(reset, 1))

    async def failed(self, *keys: str) -> None:
        for key in keys:
            await self.store.increment(key, self.window_seconds)

    async def succeeded(self, *keys: str) -> None:
        for key in keys:
            await self.store.clear(key)
