"""``/v1/graphql`` as ASGI middleware inside the REST app's own middleware (request id, access
log, Host check, body-size limit), so GraphQL requests get the same treatment; every other
path is passed on untouched. The adapter counts its requests against the per-client budget
itself (REST's rate-limit middleware skips this path) and answers RATE_LIMITED with 429."""

from __future__ import annotations

import logging

import orjson
from ariadne.asgi import GraphQL
from ariadne.explorer import ExplorerGraphiQL, ExplorerHttp405
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from protocols.errors import graphql_code
from protocols.graphql_api.context import CALLER_KEY, make_context
from protocols.graphql_api.errors import format_graphql_error
from protocols.graphql_api.limits import CachedValidator, parse_query, validation_rules
from protocols.graphql_api.schema import build_schema
from services.shared.errors import DomainError, TooManyAttempts
from services.shared.ratelimit import RateDecision
from settings import API_PREFIX
from web.container import Container
from web.middleware import BodyTooLarge, rate_limit, rate_limit_headers
from web.problems import send_problem

GRAPHQL_PATH = f"{API_PREFIX}/graphql"
MAX_TOKENS = 10_000

# ariadne logs every error of every response (a NOT_FOUND too); errors.format_graphql_error
# logs the unexpected ones with their traceback, once.
_ariadne_log = logging.getLogger("petstore.graphql.ariadne")
_ariadne_log.addFilter(lambda _record: False)


class GraphQLMiddleware:
    def __init__(self, app: ASGIApp, container: Container, path: str = GRAPHQL_PATH) -> None:
        settings = container.settings
        self.app = app
        self.container = container
        self.paths = {path, path + "/"}
        self.graphql = GraphQL(
            build_schema(),
            context_value=make_context,
            query_parser=parse_query(MAX_TOKENS),
            query_validator=CachedValidator(),
            validation_rules=validation_rules(
                settings.graphql_max_depth, settings.graphql_max_cost
            ),
            explorer=(
                ExplorerGraphiQL(title="Pet Store GraphiQL")
                if settings.graphiql
                else ExplorerHttp405()
            ),
            error_formatter=format_graphql_error,
            logger=_ariadne_log,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        decision = await rate_limit(self.container, scope)
        if decision is not None and decision.exceeded:
            await self._rate_limited(send, decision)
            return
        headers = Headers(scope=scope)
        try:
            scope[CALLER_KEY] = await self.container.auth.principal(
                headers.get("authorization"), headers.get("x-tenant-id"), scope
            )
        except DomainError as refused:  # reported by every field that needs the caller
            scope[CALLER_KEY] = refused
        raw = [
            (k.lower().encode(), v.encode())
            for k, v in (rate_limit_headers(decision) if decision else {}).items()
        ]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and raw:
                message["headers"] = [*message.get("headers", []), *raw]
            await send(message)

        try:
            await self.graphql(scope, receive, send_with_headers)
        except BodyTooLarge as exc:  # more bytes than Content-Length said (RequestGuard counts)
            await send_problem(send, 413, str(exc.detail), instance=scope["path"])

    @staticmethod
    async def _rate_limited(send: Send, decision: RateDecision) -> None:
        refused = TooManyAttempts(
            decision.reset,
            f"Rate limit exceeded. Please wait {decision.reset} seconds before making "
            "another request.",
        )
        extensions = {"code": graphql_code(refused), "retryAfter": decision.reset}
        body = orjson.dumps({"errors": [{"message": refused.detail, "extensions": extensions}]})
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *((k.lower().encode(), v.encode()) for k, v in rate_limit_headers(decision).items()),
        ]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})
