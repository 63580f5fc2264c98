"""The per-client request budget, for every protocol: REST calls it from its middleware, other
adapters call it themselves (one call per request each). Fixed one-minute windows counted in the
injected store (in-process, or Redis so that every worker shares them).

Besides the general budget a request may be counted against a named, tighter budget of its own
(chat completions per caller, login per client address); the decision describes whichever is
closer to running out."""

from __future__ import annotations

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
        self, counters: CounterStore, per_minute: int, budgets: dict[str, int] | None = None
    ) -> None:
        """``per_minute``: the general budget (0: none). ``budgets``: extra named budgets
        (name → requests per minute; 0 or less: none)."""
        self.counters = counters
        self.per_minute = per_minute
        self.budgets = {name: n for name, n in (budgets or {}).items() if n > 0}

    def applies(self, budget: str | None = None) -> bool:
        return self.per_minute > 0 or (budget is not None and budget in self.budgets)

    async def hit(
        self, client: str, budget: str | None = None, budget_client: str | None = None
    ) -> RateDecision | None:
        """Count one request by ``client`` (see auth.principals.client_key); None when no budget
        applies. The named ``budget`` counts against ``budget_client`` when given (login's
        budget is per client address, whoever the token says the caller is)."""
        counted: list[tuple[int, int, int]] = []  # (limit, count, reset)
        if self.per_minute > 0:
            count, reset = await self.counters.increment("rl:" + client, WINDOW_SECONDS)
            counted.append((self.per_minute, count, reset))
        if budget is not None and budget in self.budgets:
            count, reset = await self.counters.increment(
                f"rl:{budget}:{budget_client or client}", WINDOW_SECONDS
            )
            counted.append((self.budgets[budget], count, reset))
        if not counted:
            return None
        limit, count, reset = min(counted, key=lambda b: (b[0] - b[1], -b[2]))
        return RateDecision(
            limit=limit,
            remaining=max(limit - count, 0),
            reset=reset,
            policy=", ".join(f"{b[0]};w={WINDOW_SECONDS}" for b in counted),
            exceeded=count > limit,
        )
