"""The per-client request budget, for every protocol: REST calls it from its middleware, other
adapters call it themselves (one call per request each). Fixed windows (one minute unless a
budget says otherwise) counted in the injected store (in-process, or Redis so that every worker
shares them).

Besides the general budget a request may be counted against a named, tighter budget of its own
(chat completions and logins per minute, registrations per hour). A request is charged to every
key of its caller (a token's subject *and* the client address, so that N throwaway accounts
behind one address do not get N budgets); it is refused when any of them is exhausted, and the
decision describes whichever is closest to running out."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from services.shared.throttle import CounterStore

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class RateDecision:
    limit: int
    remaining: int
    reset: int  # seconds until the window that decided ends
    policy: str  # every budget counted, as an IETF RateLimit-Policy value: "600;w=60, 20;w=60"
    exceeded: bool


class RateLimiter:
    def __init__(
        self,
        counters: CounterStore,
        per_minute: int,
        budgets: dict[str, int | tuple[int, int]] | None = None,
    ) -> None:
        """``per_minute``: the general budget (0: none). ``budgets``: extra named budgets
        (name → requests per minute, or (requests, window in seconds); 0 requests: none)."""
        self.counters = counters
        self.per_minute = per_minute
        self.budgets: dict[str, tuple[int, int]] = {}
        for name, value in (budgets or {}).items():
            limit, window = value if isinstance(value, tuple) else (value, WINDOW_SECONDS)
            if limit > 0:
                self.budgets[name] = (limit, window)

    def applies(self, budget: str | None = None) -> bool:
        return self.per_minute > 0 or (budget is not None and budget in self.budgets)

    async def hit(
        self, clients: str | Sequence[str], budget: str | None = None
    ) -> RateDecision | None:
        """Count one request against each of the caller's keys (auth.principals.client_keys),
        in the general budget and in ``budget`` if it names one; None when no budget applies.
        Exceeded when any key is over any budget."""
        keys = [clients] if isinstance(clients, str) else list(clients)
        limits: list[tuple[str, int, int]] = []  # (counter prefix, limit, window)
        if self.per_minute > 0:
            limits.append(("rl:", self.per_minute, WINDOW_SECONDS))
        if budget is not None and budget in self.budgets:
            limits.append((f"rl:{budget}:", *self.budgets[budget]))
        if not limits:
            return None
        pairs = [(prefix + key, limit, window) for prefix, limit, window in limits for key in keys]
        results = await asyncio.gather(
            *(self.counters.increment(key, window) for key, _, window in pairs)
        )
        counted = [
            (limit, count, reset)
            for (_, limit, _), (count, reset) in zip(pairs, results, strict=True)
        ]
        limit, count, reset = min(counted, key=lambda b: (b[0] - b[1], -b[2]))
        return RateDecision(
            limit=limit,
            remaining=max(limit - count, 0),
            reset=reset,
            policy=", ".join(f"{n};w={w}" for _, n, w in limits),
            exceeded=count > limit,
        )
