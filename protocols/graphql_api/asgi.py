"""``/v1/graphql`` as ASGI middleware inside the REST app's own middleware (request id, access
log, Host check, body-size limit), so GraphQL requests get the same treatment; every other
path is passed on untouched."""

from __future__ import annotations

import logging

from ariadne.asgi import GraphQL
from ariadne.explorer import ExplorerGraphiQL, ExplorerHttp405
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from protocols.graphql_api.context import CALLER_KEY, authenticate, make_context
from protocols.graphql_api.errors import format_graphql_error
from protocols.graphql_api.limits import parse_query, validation_rules
from protocols.graphql_api.schema import build_schema
from services.shared.errors import DomainError
from web.container import Container
from web.middleware import BodyTooLarge
from web.problems import send_problem

GRAPHQL_PATH = "/v1/graphql"
MAX_TOKENS = 10_000

# ariadne logs every error of every response (a NOT_FOUND too); errors.format_graphql_error
# logs the unexpected ones with their traceback, once.
_ariadne_log = logging.getLogger("petstore.graphql.ariadne")
_ariadne_log.addFilter(lambda _record: False)


class GraphQLMiddleware:
    def __init__(self, app: ASGIApp, container: Container, path: str = GRAPHQL_PATH) -> None:
        settings = container.settings
        self.app = app
        self.paths = {path, path + "/"}
        self.graphql = GraphQL(
            build_schema(),
            context_value=make_context,
            query_parser=parse_query(MAX_TOKENS),
            validation_rules=validation_rules(
                settings.graphql_max_depth, settings.graphql_max_cost
            ),
            explorer=ExplorerGraphiQL(title="Pet Store GraphiQL")
            if settings.graphiql
            else ExplorerHttp405(),
            error_formatter=format_graphql_error,
            logger=_ariadne_log,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        try:
            scope[CALLER_KEY] = await authenticate(Request(scope))
        except DomainError as refused:  # reported by every field that needs the caller
            scope[CALLER_KEY] = refused
        try:
            await self.graphql(scope, receive, send)
        except BodyTooLarge as exc:  # more bytes than Content-Length said (RequestGuard counts)
            await send_problem(send, 413, str(exc.detail), instance=scope["path"])
