"""GraphQL errors: every error carries ``extensions.code``; domain errors take theirs from
protocols.errors (one table for every protocol), with the fields they name in
``extensions.errors`` (as REST's ``errors[]``). Anything unexpected is logged and shown
without internals."""

from __future__ import annotations

import logging
from typing import Any

from ariadne import format_error, unwrap_graphql_error
from graphql import GraphQLError

from protocols.errors import field_errors, graphql_code, retry_after
from services.shared.errors import DomainError

log = logging.getLogger("petstore.graphql")

PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
BAD_USER_INPUT = "BAD_USER_INPUT"
INTERNAL = "INTERNAL_SERVER_ERROR"


def _request_error_code(error: GraphQLError) -> str:
    """Errors raised before execution: syntax, validation, or variables of the wrong type."""
    if error.message.startswith("Syntax Error"):
        return PARSE_FAILED
    if error.message.startswith("Variable '$"):
        return BAD_USER_INPUT  # coercion of the variables (wrong type, missing, not an enum)
    return VALIDATION_FAILED


def format_graphql_error(error: GraphQLError, debug: bool = False) -> dict[str, Any]:
    formatted: dict[str, Any] = format_error(error, debug)
    extensions: dict[str, Any] = {**(formatted.get("extensions") or {})}
    original = unwrap_graphql_error(error)
    if isinstance(original, DomainError):
        formatted["message"] = original.detail
        extensions["code"] = graphql_code(original)
        fields = field_errors(original)
        if fields:
            extensions["errors"] = fields
        wait = retry_after(original)
        if wait is not None:
            extensions["retryAfter"] = wait
    elif error.path is None:  # refused before execution
        extensions.setdefault("code", _request_error_code(error))
    else:
        log.error("unexpected error in a resolver", exc_info=original or error)
        formatted["message"] = "An unexpected error occurred."
        extensions["code"] = INTERNAL
    formatted["extensions"] = extensions
    return formatted
