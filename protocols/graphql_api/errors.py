"""GraphQL errors: every error carries ``extensions.code``; domain errors take theirs from
protocols.errors (one table for every protocol), with the fields they name in
``extensions.errors`` (as REST's ``errors[]``). Anything unexpected is logged and shown
without internals."""

from __future__ import annotations

import logging
import re
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


_BAD_VALUE = re.compile(r"^Variable '\$\w+'|Expected value of type|got invalid value")
_VALUE_AT = re.compile(
    r"^Variable '\$(\w+)' (?:has invalid value|got invalid value)(?: at \.?([\w.\[\]]+))?"
)


def without_values(message: str) -> str:
    """graphql-core's message about a bad value, without the value: it may be a card number,
    a CVC or a password (as REST, which never echoes them). Values follow "found", "got invalid
    value" or the last colon of a reason; the location, the type and the reason stay."""
    text = re.sub(r",? found:? .*?(?=; |$)", "", message, flags=re.S)
    text = re.sub(r" got invalid value .*?(?= at |; |$)", " got an invalid value", text, flags=re.S)
    located = re.match(r"^(.*? invalid value at \S+?):\s(.*)$", text, re.S)
    head, rest = (located.group(1), located.group(2)) if located else ("", text)
    reasons = "; ".join(part.split(": ", 1)[0].rstrip(".") for part in rest.split("; ") if part)
    return (f"{head}: {reasons}" if head else reasons).rstrip(".") + "."


def _request_error(error: GraphQLError) -> tuple[str, list[dict[str, str]]]:
    """Errors raised before execution: syntax, validation, or values of the wrong type (in the
    variables or written in the query), the latter with the field they are about."""
    if error.message.startswith("Syntax Error"):
        return PARSE_FAILED, []
    if not _BAD_VALUE.search(error.message):
        return VALIDATION_FAILED, []
    found = _VALUE_AT.match(error.message)
    if found is None:
        return BAD_USER_INPUT, []
    field = found.group(2) or found.group(1)
    message = without_values(error.message)
    return BAD_USER_INPUT, [{"field": field.strip("'"), "message": message, "code": "invalid"}]


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
        if "code" not in extensions:  # the limits set their own
            extensions["code"], fields = _request_error(error)
            if extensions["code"] == BAD_USER_INPUT:
                formatted["message"] = without_values(error.message)
            if fields:
                extensions["errors"] = fields
    else:
        log.error("unexpected error in a resolver", exc_info=original or error)
        formatted["message"] = "An unexpected error occurred."
        extensions["code"] = INTERNAL
    formatted["extensions"] = extensions
    return formatted
