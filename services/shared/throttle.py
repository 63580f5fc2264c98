"""Counting failures per key in a time window (login throttling). The store is injected:
in-process by default, Redis when configured (infra/counters.py)."""

from __future__ import annotations

from typing import Protocol

from services.shared.errors import TooManyAttempts


class CounterStore(Protocol):
    async def increment(self, key: str, window_seconds: int) -> tuple[int, int]:
        """Add one to ``key``'s count in the current window; return (count, seconds to reset)."""

    async def peek(self, key: str) -> tuple[int, int]:
        """Return (count, seconds to reset) without changing it."""

    async def clear(self, key: str) -> None: ...

    async def decrement(self, key: str) -> None:
        """Take one back (never below zero); no-op when the key is gone."""


class FailureThrottle:
    """Counts attempts per key in a fixed window and refuses past a limit.

    An attempt is counted *before* the credentials are checked, so concurrent guesses cannot all
    slip past the check while the (slow) password verification runs; a success gives its
    attempt back. ``factor`` scales the limit for keys that stand for many users (a client
    address)."""

    def __init__(self, store: CounterStore, max_failures: int, window_seconds: int) -> None:
        self.store = store
        self.max_failures = max_failures
        self.window_seconds = window_seconds

    async def attempt(self, key: str, factor: int = 1) -> None:
        """Count one attempt; raise TooManyAttempts if it goes past ``factor`` x the limit."""
        limit = self.max_failures * factor
        if not limit:
            return
        count, reset = await self.store.increment(key, self.window_seconds)
        if count > limit:
            raise TooManyAttempts(retry_after=max(reset, 1))

    async def forgive(self, key: str) -> None:
        """A success: the key's failures no longer count."""
        await self.store.clear(key)

    async def give_back(self, key: str) -> None:
        """A success on a shared key: only this attempt is taken back."""
        await self.store.decrement(key)
