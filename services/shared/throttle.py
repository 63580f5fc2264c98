"""Counting failures per key in a time window (login throttling). The store is injected:
in-process by default, Redis when configured (infra/counters.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Protocol

from services.shared.errors import TooManyAttempts

MAX_IN_LINE = 2
"""Attempts on one never-locked key that wait in line per worker (``FailureThrottle.slowed``)."""


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
    address).

    ``sleep`` waits out a backoff (``asyncio.sleep``; tests pass a recorder)."""

    def __init__(
        self,
        store: CounterStore,
        max_failures: int,
        window_seconds: int,
        backoff_base: float = 0.25,
        backoff_max: float = 2.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.sleep = sleep
        self._lines: dict[str, tuple[asyncio.Lock, int]] = {}
        """Keys in backoff: their lock and how many attempts hold or wait for it (this process)."""

    async def attempt(self, key: str, factor: int = 1) -> None:
        """Count one attempt; raise TooManyAttempts if it goes past ``factor`` x the limit."""
        limit = self.max_failures * factor
        if not limit:
            return
        count, reset = await self.store.increment(key, self.window_seconds)
        if count > limit:
            raise TooManyAttempts(retry_after=max(reset, 1))

    def delay_for(self, count: int) -> float:
        """The backoff for the ``count``-th attempt: none up to the limit, then ``backoff_base``
        doubling per attempt, never more than ``backoff_max`` (a delay, never a lock)."""
        if not self.max_failures or count <= self.max_failures or self.backoff_max <= 0:
            return 0.0
        excess = min(count - self.max_failures - 1, 30)
        return float(min(self.backoff_base * 2**excess, self.backoff_max))

    async def backoff(self, key: str) -> float:
        """Count one attempt on a key that must never be locked (a username tried from many
        addresses); return how long the caller should wait before checking it."""
        if not self.max_failures or self.backoff_max <= 0:
            return 0.0
        count, _ = await self.store.increment(key, self.window_seconds)
        return self.delay_for(count)

    @asynccontextmanager
    async def slowed(self, key: str) -> AsyncIterator[float]:
        """Count one attempt on a key that must never be locked (``backoff``) and run the
        caller's check inside the block. Past the limit, attempts on the key take turns in this
        process: each waits for the one before it to finish its check, then waits its own delay,
        and holds the key through its check; so parallel attempts (from many addresses) are
        slowed like sequential ones, to one per delay per worker. At most ``MAX_IN_LINE``
        attempts wait in line; beyond that they wait their own delay side by side, so that a
        flood cannot queue the real user behind it (at worst it waits the line, about
        ``MAX_IN_LINE + 1`` delays). Yields the delay waited."""
        delay = await self.backoff(key)
        if delay <= 0:
            yield 0.0
            return
        if self._lines.get(key, (None, 0))[1] >= MAX_IN_LINE:
            # A flood: waiting in line would make the real user's attempt wait for every
            # attacker's (a lock-out by queue). Past a short line, attempts wait their own delay
            # side by side instead, so nobody ever waits much more than the line's length.
            await self.sleep(delay)
            yield delay
            return
        lock, waiting = self._lines.get(key, (asyncio.Lock(), 0))
        self._lines[key] = (lock, waiting + 1)
        try:
            async with lock:
                await self.sleep(delay)
                yield delay
        finally:
            lock, waiting = self._lines[key]
            if waiting <= 1:
                del self._lines[key]
            else:
                self._lines[key] = (lock, waiting - 1)

    async def forgive(self, key: str) -> None:
        """A success: the key's failures no longer count."""
        await self.store.clear(key)

    async def give_back(self, key: str) -> None:
        """A success on a shared key: only this attempt is taken back."""
        await self.store.decrement(key)
