"""Domain errors → each protocol's form, one row per error.

Minimal version written on the graphql branch (HTTP status and GraphQL ``extensions.code``);
the full table (gRPC, SOAP, JSON-RPC) comes from main."""

from __future__ import annotations

from typing import Any

from services.shared.errors import (
    AuthenticationFailed,
    Conflict,
    DomainError,
    Forbidden,
    ImageRejected,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PaymentDeclined,
    PaymentProcessorError,
    PreconditionFailed,
    TooManyAttempts,
    UpstreamFailed,
    UpstreamTimeout,
)

# domain error → (HTTP status, GraphQL extensions.code)
TABLE: dict[type[DomainError], tuple[int, str]] = {
    NotFound: (404, "NOT_FOUND"),
    Conflict: (409, "CONFLICT"),
    Forbidden: (403, "FORBIDDEN"),
    PreconditionFailed: (412, "PRECONDITION_FAILED"),
    AuthenticationFailed: (401, "UNAUTHENTICATED"),
    InvalidInput: (422, "BAD_USER_INPUT"),
    TooManyAttempts: (429, "RATE_LIMITED"),
    PaymentDeclined: (402, "PAYMENT_DECLINED"),
    PaymentProcessorError: (502, "SERVICE_UNAVAILABLE"),
    PayloadTooLarge: (413, "BAD_USER_INPUT"),
    ImageRejected: (422, "BAD_USER_INPUT"),
    UpstreamFailed: (502, "SERVICE_UNAVAILABLE"),
    UpstreamTimeout: (504, "SERVICE_UNAVAILABLE"),
}
INTERNAL = (500, "INTERNAL_SERVER_ERROR")


def _row(exc: DomainError) -> tuple[int, str]:
    for cls in type(exc).__mro__:
        if cls in TABLE:
            return TABLE[cls]  # type: ignore[index]
    return INTERNAL


def http_status(exc: DomainError) -> int:
    return _row(exc)[0]


def graphql_code(exc: DomainError) -> str:
    return _row(exc)[1]


def field_errors(exc: DomainError) -> list[dict[str, Any]]:
    """The fields an error names (``field``, ``message``, ``code``), as REST lists them."""
    if isinstance(exc, InvalidInput):
        return [{"field": e.field, "message": e.message, "code": e.code} for e in exc.errors]
    if isinstance(exc, ImageRejected | Conflict) and exc.field:
        return [{"field": exc.field, "message": exc.detail, "code": exc.code}]
    if isinstance(exc, PaymentDeclined):
        return [{"field": "source", "message": exc.detail, "code": exc.code}]
    if isinstance(exc, PayloadTooLarge):
        return [{"field": exc.field, "message": exc.detail, "code": "too_large"}]
    return []
