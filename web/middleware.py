"""ASGI middleware placed in front of Connexion's exception handling.

- RequestContext: puts the container in the scope, assigns X-Request-ID, logs one JSON line.
- RateLimit: fixed one-minute windows per token subject and per IP (both charged), RateLimit-*
  headers on every response, 429 + Retry-After over budget; in-process or Redis. Some paths
  (chat completions per minute, registration per hour) have a tighter budget of their own.
- RequestGuard: a syntactically valid Host that is one of the served names (400), the spec's
  method table (405 with a correct Allow), Accept (406), the QUERY method for /pets/search,
  and the body-size limit (413, per route: image uploads get their own) checked on
  Content-Length and again while the body streams in, before anything buffers it.
"""

from __future__ import annotations

import itertools
import logging
import re
import time
import uuid
from collections.abc import Iterable
from typing import Any

from connexion.exceptions import ProblemException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from auth.principals import bearer_token, client_address, client_keys
from services.shared.ratelimit import RateDecision
from settings import API_PREFIX
from web.container import SCOPE_KEY, Container
from web.openapi_walk import iter_operations, resolve
from web.problems import send_problem

access_log = logging.getLogger("petstore.access")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, container: Container) -> None:
        self.app = app
        self.container = container
        # Request ids: a random per-process prefix and a counter. Unique without a getrandom
        # syscall per request (which released the GIL to the DB worker thread under load).
        self._prefix = uuid.uuid4().hex[:16]
        self._counter = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        scope[SCOPE_KEY] = self.container
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _header(scope, b"x-request-id")
        if not request_id or len(request_id) > 64 or not request_id.isascii():
            request_id = f"{self._prefix}{next(self._counter):016x}"
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "request",
                    extra={
                        "request_id": request_id,
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    },
                )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def rate_limit_headers(decision: RateDecision) -> dict[str, str]:
    """IETF RateLimit-* headers for a decision (Retry-After too when it is exceeded)."""
    headers = {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(decision.reset),
        "RateLimit-Policy": decision.policy,
    }
    if decision.exceeded:
        headers["Retry-After"] = str(decision.reset)
    return headers


async def rate_limit(
    container: Container, scope: Scope, budget: str | None = None
) -> RateDecision | None:
    """Count one HTTP request against the per-client budgets (services/shared/ratelimit.py):
    the token's subject when a token that still works is sent (verified once per request; a
    logged-out token, or one from before a password change, spends no account's budget) and,
    always, the client address."""
    limiter = container.rate_limiter
    if not limiter.applies(budget):
        return None
    token = bearer_token(_header(scope, b"authorization"))
    claims = await container.auth.current_claims(token, scope) if token else None
    return await limiter.hit(client_keys(claims, client_address(scope)), budget)


class RateLimitMiddleware:
    """Every REST request under ``prefix`` counts against the per-client budget; a path in
    ``path_budgets`` (chat completions, login, registration) also against a tighter budget of its
    own, and responses there describe whichever is closer to running out (``RateLimit-Policy`` lists
    both). Paths in ``exclude`` belong to adapters that count their requests themselves
    (GraphQL)."""

    def __init__(
        self,
        app: ASGIApp,
        container: Container,
        prefix: str = API_PREFIX,
        path_budgets: Iterable[str] = (),
        exclude: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.container = container
        self.prefix = prefix
        self.path_budgets = frozenset(path_budgets)
        self.exclude = frozenset(exclude)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        if not path.startswith(self.prefix) or path in self.exclude:
            await self.app(scope, receive, send)
            return
        decision = await rate_limit(
            self.container, scope, path if path in self.path_budgets else None
        )
        if decision is None:
            await self.app(scope, receive, send)
            return
        headers = rate_limit_headers(decision)
        if decision.exceeded:
            await send_problem(
                send,
                429,
                f"Rate limit exceeded. Please wait {decision.reset} seconds before making "
                "another request.",
                headers=headers,
                instance=path,
            )
            return
        raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *raw]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyTooLarge(ProblemException):
    def __init__(self, limit: int) -> None:
        super().__init__(
            status=413,
            title="Payload Too Large",
            detail=f"The request body exceeds the limit of {limit} bytes.",
        )


_JSON_TYPES = ("application/json", "application/problem+json")
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253})(:[0-9]{1,5})?$")


def _acceptable(accept: str | None, produced: frozenset[str] = frozenset()) -> bool:
    """JSON (and problem+json) always; plus the media types the route's responses declare."""
    if not accept:
        return True
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        media = media.strip().lower()
        if re.search(r"(^|;)\s*q\s*=\s*0(\.0*)?\s*($|;)", params):
            continue
        if media in ("*/*", "application/*", *_JSON_TYPES) or media.endswith("+json"):
            return True
        if media in produced or (
            media.endswith("/*") and any(p.startswith(media[:-1]) for p in produced)
        ):
            return True
    return False


QUERY_METHOD_KEY = "petstore.query_method"
"""In the scope of a QUERY request routed as POST (a safe method: conditional requests apply)."""


class RequestGuard:
    def __init__(
        self,
        app: ASGIApp,
        routes: Iterable[tuple[str, set[str]]],
        max_body_bytes: int,
        base_path: str = API_PREFIX,
        query_paths: Iterable[str] = (),
        body_limits: Iterable[tuple[str, str, int]] = (),
        produces: Iterable[tuple[str, set[str]]] = (),
        allowed_hosts: Iterable[str] | None = None,
    ) -> None:
        """``body_limits``: (path template, method, bytes) for operations whose bodies may be
        larger than ``max_body_bytes`` (image uploads). ``produces``: (path template, media
        types) beyond JSON that the path's responses declare, for the Accept check.
        ``allowed_hosts``: the Host names served (lower-case, any port; IPv6 in brackets);
        None serves any."""
        self.app = app
        self.allowed_hosts = (
            None if allowed_hosts is None else frozenset(h.lower() for h in allowed_hosts)
        )
        self.max_body = max_body_bytes
        # Literal segments first: /pets/search is not a /pets/{id}, whatever the spec's order.
        routes = sorted(routes, key=lambda route: route[0].count("{"))
        self.routes = [(self._compile(base_path + path), methods) for path, methods in routes]
        self.raw_routes = [self._compile_named(base_path + path) for path, _ in routes]
        self.query_paths = {base_path + p for p in query_paths}
        self.body_limits = [
            (self._compile(base_path + path), method, limit) for path, method, limit in body_limits
        ]
        self.produces = [
            (self._compile(base_path + path), frozenset(types)) for path, types in produces
        ]

    def _body_limit(self, path: str, method: str) -> int:
        for regex, limit_method, limit in self.body_limits:
            if limit_method == method and regex.match(path):
                return limit
        return self.max_body

    def _produced(self, path: str) -> frozenset[str]:
        for regex, types in self.produces:
            if regex.match(path):
                return types
        return frozenset()

    @staticmethod
    def _compile(template: str) -> re.Pattern[str]:
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        return re.compile(f"^{pattern}$")

    @staticmethod
    def _compile_named(template: str) -> re.Pattern[str]:
        pattern = re.sub(r"\\\{([A-Za-z_][A-Za-z0-9_]*)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        return re.compile(f"^{pattern}$")

    def _encoded_slash(self, scope: Scope) -> str | None:
        """The path parameter whose value carries an encoded '/' (``%2F``), if the undecoded path
        matches an operation: the request is for that operation (RFC 3986: an encoded delimiter
        is data), and no parameter of the spec admits a '/'. Routing on the decoded path would
        answer 404 instead, as if the URL had one more segment."""
        raw = scope.get("raw_path")
        if not raw or b"%2f" not in raw.lower():
            return None
        text = raw.decode("latin-1")
        for regex in self.raw_routes:
            match = regex.match(text)
            if match:
                return next(
                    (name for name, value in match.groupdict().items() if "%2f" in value.lower()),
                    None,
                )
        return None

    def _methods(self, path: str) -> set[str] | None:
        for regex, methods in self.routes:
            if regex.match(path):
                return methods
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        host = _header(scope, b"host")
        if host is not None:
            # The Host goes into Location and links: a malformed or foreign one must never get
            # that far (a forged Host would otherwise make the API hand out an attacker's URLs).
            matched = _HOST.match(host)
            if not matched:
                await send_problem(send, 400, "Invalid Host header.", instance=path)
                return
            if self.allowed_hosts is not None and matched[1].lower() not in self.allowed_hosts:
                await send_problem(
                    send, 400, "This server does not serve that Host.", instance=path
                )
                return
        bad = self._encoded_slash(scope)
        if bad is not None:
            message = "must not contain '/'"
            errors = [{"field": bad, "message": message, "code": "pattern"}]
            await send_problem(
                send,
                400,
                f"{bad}: {message}",
                slug="validation-error",
                title="Validation Error",
                errors=errors,
                instance=path,
            )
            return
        if method == "QUERY" and path in self.query_paths:
            scope = {**scope, "method": "POST", QUERY_METHOD_KEY: True}  # safe: 304 applies
            method = "POST"
        methods = self._methods(path)
        if methods is not None:
            allowed = methods | ({"HEAD"} if "GET" in methods else set())
            if method not in allowed:
                await send_problem(
                    send,
                    405,
                    f"Method {method} is not allowed on {path}.",
                    headers={"Allow": ", ".join(sorted(methods))},
                    instance=path,
                )
                return
            produced = self._produced(path)
            if not _acceptable(_header(scope, b"accept"), produced):
                types = ", ".join(["application/json", *sorted(produced)])
                await send_problem(
                    send,
                    406,
                    f"This operation only produces {types} (errors: application/problem+json).",
                    instance=path,
                )
                return
        limit = self._body_limit(path, method)
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await send_problem(send, 400, "Invalid Content-Length header.", instance=path)
                return
            if int(declared) > limit:
                await send_problem(
                    send,
                    413,
                    f"The request body exceeds the limit of {limit} bytes.",
                    instance=path,
                )
                return
        elif _header(scope, b"transfer-encoding"):
            await self._chunked(scope, receive, send, limit)
            return
        await self.app(scope, self._limited(receive, limit), send)

    async def _chunked(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """A chunked body has no Content-Length, which Connexion treats as no body at all. Read it
        here, counting, stop at the limit (413), and hand it on with its length."""
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await send_problem(
                    send,
                    413,
                    f"The request body exceeds the limit of {limit} bytes.",
                    instance=scope["path"],
                )
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        pending = [b"".join(chunks)]
        chunks.clear()
        headers = [(k, v) for k, v in scope["headers"] if k != b"transfer-encoding"]
        headers.append((b"content-length", str(len(pending[0])).encode()))

        async def replay() -> Message:
            if pending:  # handed over once, then not referenced here any more
                return {"type": "http.request", "body": pending.pop(), "more_body": False}
            return await receive()

        await self.app({**scope, "headers": headers}, replay, send)

    def _limited(self, receive: Receive, limit: int) -> Receive:
        seen = 0

        async def receive_limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        return receive_limited


def spec_media_types(spec: dict[str, Any], prefix: str = "") -> list[tuple[str, set[str]]]:
    """(path, media types other than JSON that its responses declare), for the Accept check.
    ``prefix``: where the spec's paths sit below the guard's base path (a module such as the
    Admin API, ``/admin``)."""
    types: dict[str, set[str]] = {}
    for path, _method, op in iter_operations(spec):
        for response in op.get("responses", {}).values():
            media = set(resolve(spec, response).get("content", {})) - set(_JSON_TYPES)
            types.setdefault(path, set()).update(media)
    return [(prefix + path, found) for path, found in types.items() if found]


def spec_routes(spec: dict[str, Any], prefix: str = "") -> list[tuple[str, set[str]]]:
    """(path, methods) of every path of a spec, its paths below ``prefix`` (as above)."""
    routes: dict[str, set[str]] = {path: set() for path in spec.get("paths", {})}
    for path, method, _op in iter_operations(spec):
        routes[path].add(method.upper())
    return [(prefix + path, methods) for path, methods in routes.items()]
