"""One table from each domain error to what every protocol says about it.

A row per error, a column per protocol: REST's HTTP status and RFC 9457 problem type, GraphQL's
``extensions.code``, the gRPC status, the SOAP 1.1 fault code, the JSON-RPC error code (MCP) and
the WebSocket close code. Adapters look errors up here and add only their own framing; a domain
error missing from the table is a 500-class internal error everywhere (and is logged)."""

from __future__ import annotations

from dataclasses import dataclass

from services.shared.errors import (
    AuthenticationFailed,
    Conflict,
    DomainError,
    Forbidden,
    ImageMissing,
    ImageRejected,
    ImageTooLarge,
    InvalidCursor,
    InvalidInput,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    PaymentDeclined,
    PaymentProcessorError,
    PreconditionFailed,
    TooManyAttempts,
    UnpaidOrderLimit,
    UnsafeImage,
    UnsupportedImage,
    UpstreamFailed,
    UpstreamTimeout,
)


@dataclass(frozen=True)
class ErrorCodes:
    http: int
    problem: str  # slug of the problem type URI https://petstoreapi.com/errors/<problem>
    graphql: str  # extensions.code
    grpc: str  # grpc.StatusCode member name
    soap: str  # SOAP 1.1 faultcode (Client: the caller's fault; Server: ours)
    jsonrpc: int  # JSON-RPC 2.0 error code (implementation-defined range, -32000 to -32099)
    ws_close: int  # WebSocket close code (4000 + the HTTP status; 1011 for internal errors)


def _row(http: int, problem: str, graphql: str, grpc: str, jsonrpc: int) -> ErrorCodes:
    soap = "soap:Client" if http < 500 else "soap:Server"
    return ErrorCodes(http, problem, graphql, grpc, soap, jsonrpc, 4000 + http)


ERRORS: dict[type[DomainError], ErrorCodes] = {
    InvalidInput: _row(422, "validation-error", "BAD_USER_INPUT", "INVALID_ARGUMENT", -32602),
    InvalidCursor: _row(400, "validation-error", "BAD_USER_INPUT", "INVALID_ARGUMENT", -32602),
    ImageMissing: _row(400, "validation-error", "BAD_USER_INPUT", "INVALID_ARGUMENT", -32602),
    AuthenticationFailed: _row(
        401, "invalid-credentials", "UNAUTHENTICATED", "UNAUTHENTICATED", -32001
    ),
    PaymentDeclined: _row(
        402, "payment-declined", "PAYMENT_DECLINED", "FAILED_PRECONDITION", -32002
    ),
    Forbidden: _row(403, "forbidden", "FORBIDDEN", "PERMISSION_DENIED", -32003),
    NotFound: _row(404, "not-found", "NOT_FOUND", "NOT_FOUND", -32004),
    Conflict: _row(409, "conflict", "CONFLICT", "FAILED_PRECONDITION", -32009),
    UnpaidOrderLimit: _row(409, "conflict", "CONFLICT", "RESOURCE_EXHAUSTED", -32009),
    PreconditionFailed: _row(
        412, "precondition-failed", "PRECONDITION_FAILED", "FAILED_PRECONDITION", -32012
    ),
    PayloadTooLarge: _row(
        413, "payload-too-large", "PAYLOAD_TOO_LARGE", "INVALID_ARGUMENT", -32013
    ),
    ImageTooLarge: _row(413, "payload-too-large", "PAYLOAD_TOO_LARGE", "INVALID_ARGUMENT", -32013),
    UnsupportedImage: _row(
        415, "unsupported-media-type", "BAD_USER_INPUT", "INVALID_ARGUMENT", -32015
    ),
    ImageRejected: _row(422, "invalid-image", "BAD_USER_INPUT", "INVALID_ARGUMENT", -32602),
    UnsafeImage: _row(422, "invalid-image", "BAD_USER_INPUT", "INVALID_ARGUMENT", -32602),
    TooManyAttempts: _row(429, "rate-limit-exceeded", "RATE_LIMITED", "RESOURCE_EXHAUSTED", -32029),
    PaymentProcessorError: _row(
        502, "payment-processor-error", "BAD_GATEWAY", "UNAVAILABLE", -32050
    ),
    UpstreamFailed: _row(502, "bad-gateway", "BAD_GATEWAY", "UNAVAILABLE", -32050),
    Overloaded: _row(503, "service-unavailable", "SERVICE_UNAVAILABLE", "UNAVAILABLE", -32053),
    UpstreamTimeout: _row(504, "gateway-timeout", "GATEWAY_TIMEOUT", "DEADLINE_EXCEEDED", -32054),
}

INTERNAL = ErrorCodes(
    500, "internal-error", "INTERNAL_SERVER_ERROR", "INTERNAL", "soap:Server", -32603, 1011
)
"""Anything unexpected, and a domain error missing from the table; shown without details."""


def codes_for(exc: BaseException) -> ErrorCodes:
    """The row of the error's class or of its nearest listed base class; INTERNAL otherwise."""
    for cls in type(exc).__mro__:
        codes = ERRORS.get(cls)  # type: ignore[call-overload]
        if codes is not None:
            return codes  # type: ignore[no-any-return]
    return INTERNAL


def graphql_code(exc: BaseException) -> str:
    return codes_for(exc).graphql


def field_errors(exc: DomainError) -> list[dict[str, str]] | None:
    """The fields an error is about, as every protocol lists them: ``[{field, message, code}]``
    (REST's ``errors[]``, GraphQL's ``extensions.errors``, a gRPC BadRequest, a SOAP detail)."""
    if isinstance(exc, InvalidInput):
        return [{"field": e.field, "message": e.message, "code": e.code} for e in exc.errors]
    if isinstance(exc, ImageRejected | Conflict) and exc.field:
        return [{"field": exc.field, "message": exc.detail, "code": exc.code}]
    if isinstance(exc, PaymentDeclined):
        return [{"field": "source", "message": exc.detail, "code": exc.code}]
    if isinstance(exc, PayloadTooLarge):
        return [{"field": exc.field, "message": exc.detail, "code": "too_large"}]
    return None


def retry_after(exc: DomainError) -> int | None:
    """Seconds a caller should wait before trying again, for errors that say so."""
    return exc.retry_after if isinstance(exc, TooManyAttempts | Overloaded) else None
