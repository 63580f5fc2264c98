"""Liveness and readiness, outside the versioned API (load balancers and orchestrators probe them).

- ``GET /healthz``: the process answers (200 ``{"status": "ok"}``); nothing else is touched.
- ``GET /readyz``: every named check passes (200 ``{"status": "ready", ...}``), else 503
  ``{"status": "not ready", ...}``; each check's outcome is listed. ``warnings`` repeats what
  the server warned about at startup (e.g. several workers counting limits without Redis): a
  server that is up but does not enforce its limits as configured is ready, and says so here.

Both sit outside the Host allow-list and the rate limits: probes come from the orchestrator, by
address, and must never be refused for it. Their bodies name no internals (a failed check reads
``"unavailable"``; the reason goes to the log)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

import anyio
import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger("petstore.health")

HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
CHECK_TIMEOUT_SECONDS = 2.0
CACHE_SECONDS = 1.0

Check = Callable[[], Awaitable[str]]
"""Returns a short outcome ("ok", a revision, "not configured"); raises when not ready."""


class HealthMiddleware:
    def __init__(
        self, app: ASGIApp, checks: Mapping[str, Check], warnings: Sequence[str] = ()
    ) -> None:
        self.app = app
        self.checks = dict(checks)
        self.warnings = list(warnings)
        self._lock = anyio.Lock()
        self._last: tuple[float, int, dict[str, object]] | None = None  # (when, status, body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path") if scope["type"] == "http" else None
        if path not in (HEALTH_PATH, READY_PATH):
            await self.app(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _send(scope, send, 405, {"status": "method not allowed"}, allow="GET, HEAD")
            return
        if path == HEALTH_PATH:
            await _send(scope, send, 200, {"status": "ok"})
            return
        status, body = await self._readiness()
        await _send(scope, send, status, body)

    async def _readiness(self) -> tuple[int, dict[str, object]]:
        """At most one round of checks at a time, its verdict reused for ``CACHE_SECONDS``: a
        flood of probes (they are not rate limited) costs the database one round per second,
        and while a round is running (a hung database) probes get the last verdict at once."""
        now = time.monotonic()
        if self._last is not None and (now - self._last[0] < CACHE_SECONDS or self._lock.locked()):
            return self._last[1], self._last[2]
        async with self._lock:
            if self._last is not None and time.monotonic() - self._last[0] < CACHE_SECONDS:
                return self._last[1], self._last[2]
            status, body = await self._check_all()
            self._last = (time.monotonic(), status, body)
            return status, body

    async def _check_all(self) -> tuple[int, dict[str, object]]:
        results: dict[str, str] = {}
        ready = True
        for name, check in self.checks.items():
            try:
                with anyio.fail_after(CHECK_TIMEOUT_SECONDS):
                    results[name] = await check()
            except Exception as exc:  # noqa: BLE001  # any failure means not ready; reason logged
                log.warning("readiness check failed", extra={"check": name, "error": repr(exc)})
                results[name] = "unavailable"
                ready = False
        body: dict[str, object] = {
            "status": "ready" if ready else "not ready",
            "checks": results,
            "warnings": self.warnings,
        }
        return (200 if ready else 503), body


async def _send(scope: Scope, send: Send, status: int, body: object, allow: str = "") -> None:
    data = orjson.dumps(body)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(data)).encode()),
        (b"cache-control", b"no-store"),
    ]
    if allow:
        headers.append((b"allow", allow.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else data})
