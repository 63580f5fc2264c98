"""Prometheus metrics at ``GET /metrics``, outside the versioned API (like /healthz and /readyz).

- ``petstore_requests_total{operation, method, status}``: requests answered;
- ``petstore_request_duration_seconds{operation, method, status}``: a latency histogram.

``operation`` is the operationId of the matched operation of spec/openapi.yaml or spec/admin.yaml
(matched on the route template, never the raw path, so the label's values are bounded by the
specs); anything else (unknown paths, /healthz, GraphQL, the docs) is ``unmatched``.

Served only when PETSTORE_METRICS_TOKEN is set, and only to ``Authorization: Bearer <token>``
(401 otherwise): the counters describe the traffic, which is not the public's business, and a
scraper can send a bearer token. Unset, ``/metrics`` is not served (404, as any unknown path).

Several workers (PETSTORE_WORKERS > 1) each count on their own: prometheus_client's multiprocess
mode then writes every worker's values to files under one directory (``multiproc_dir``), and
``/metrics`` sums them, whichever worker answers. ``prepare_multiprocess`` sets that up; it must
run before prometheus_client is first imported (this module imports it lazily), in each worker
(the app factory runs there)."""

from __future__ import annotations

import hmac
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from web.openapi_walk import QUERY_AS_POST, iter_operations

METRICS_PATH = "/metrics"
UNMATCHED = "unmatched"


def spec_operations(spec: dict[str, Any], prefix: str) -> list[tuple[str, str, str]]:
    """(method, full path template, operationId) of every operation of a spec; a ``QUERY``
    request on a path of ``QUERY_AS_POST`` counts as its ``post`` operation (it is served so)."""
    found = []
    for path, method, op in iter_operations(spec):
        if not op.get("operationId"):
            continue
        found.append((method.upper(), prefix + path, op["operationId"]))
        if method == "post" and path in QUERY_AS_POST:
            found.append(("QUERY", prefix + path, op["operationId"]))
    return found


class OperationMatcher:
    """Request (method, path) to operationId: exact paths by dict lookup, templated ones by
    regex in the order given (the routing order: static segments win over parameters)."""

    def __init__(self, operations: Iterable[tuple[str, str, str]]) -> None:
        self.static: dict[tuple[str, str], str] = {}
        self.templated: dict[str, list[tuple[re.Pattern[str], str]]] = {}
        for method, template, operation_id in operations:
            if "{" not in template:
                self.static.setdefault((method, template), operation_id)
                continue
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            self.templated.setdefault(method, []).append((re.compile(f"^{pattern}$"), operation_id))

    def match(self, method: str, path: str) -> str:
        if method == "HEAD":
            method = "GET"
        found = self.static.get((method, path))
        if found is not None:
            return found
        for pattern, operation_id in self.templated.get(method, ()):
            if pattern.match(path):
                return operation_id
        return UNMATCHED


def prepare_multiprocess(base: Path, make_dir: Callable[[Path], None]) -> Path:
    """A directory for this server's workers, ``base/<pid of the master>``, set as
    PROMETHEUS_MULTIPROC_DIR; directories of masters that are gone are removed (the previous
    run's counts must not carry over). Every worker of one server (gunicorn's, or uvicorn
    --workers') shares its parent, so they share the directory without coordination."""
    make_dir(base)
    for old in base.iterdir():
        if old.name.isdigit() and int(old.name) != os.getppid() and not _alive(int(old.name)):
            shutil.rmtree(old, ignore_errors=True)
    path = base / str(os.getppid())
    make_dir(path)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class MetricsMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        operations: Iterable[tuple[str, str, str]],
        token: str,
        multiprocess: bool = False,
    ) -> None:
        import prometheus_client  # here: after prepare_multiprocess set its directory
        from prometheus_client import multiprocess as mp

        self.app = app
        self.matcher = OperationMatcher(operations)
        self.expected = f"Bearer {token}".encode()
        self.prometheus = prometheus_client
        labels = ("operation", "method", "status")
        if multiprocess:
            if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
                raise RuntimeError("multiprocess metrics need prepare_multiprocess() first")
            self.registry = prometheus_client.CollectorRegistry()
            mp.MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]
            owner = None  # values go to the files; the collector above reads them all
        else:
            self.registry = owner = prometheus_client.CollectorRegistry()
        self.requests = prometheus_client.Counter(
            "petstore_requests", "Requests answered", labels, registry=owner
        )
        self.latency = prometheus_client.Histogram(
            "petstore_request_duration_seconds",
            "Time to answer a request, from its arrival to the end of the response",
            labels,
            registry=owner,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == METRICS_PATH:
            await self._serve(scope, send)
            return
        start = time.perf_counter()
        status = 500  # unless a response starts

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            method = scope["method"]
            labels = (self.matcher.match(method, scope["path"]), method, str(status))
            self.requests.labels(*labels).inc()
            self.latency.labels(*labels).observe(time.perf_counter() - start)

    async def _serve(self, scope: Scope, send: Send) -> None:
        given = dict(scope["headers"]).get(b"authorization", b"")
        if not hmac.compare_digest(given, self.expected):
            await _send(scope, send, 401, b'{"status": "unauthorized"}', "application/json", True)
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _send(scope, send, 405, b'{"status": "method not allowed"}', "application/json")
            return
        body = self.prometheus.generate_latest(self.registry)
        await _send(scope, send, 200, body, self.prometheus.CONTENT_TYPE_LATEST)


async def _send(
    scope: Scope, send: Send, status: int, body: bytes, content_type: str, challenge: bool = False
) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    if status == 405:
        headers.append((b"allow", b"GET, HEAD"))
    if challenge:
        headers.append((b"www-authenticate", b'Bearer realm="metrics"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
