"""RFC 9457 problem+json responses, one builder for every error the server sends."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from connexion.lifecycle import ConnexionResponse

TYPE_BASE = "https://petstoreapi.com/errors/"
PROBLEM_JSON = "application/problem+json"

TITLES: dict[int, tuple[str, str]] = {
    400: ("bad-request", "Bad Request"),
    401: ("unauthorized", "Unauthorized"),
    402: ("payment-declined", "Payment Required"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not Found"),
    405: ("method-not-allowed", "Method Not Allowed"),
    406: ("not-acceptable", "Not Acceptable"),
    409: ("conflict", "Conflict"),
    412: ("precondition-failed", "Precondition Failed"),
    413: ("payload-too-large", "Payload Too Large"),
    415: ("unsupported-media-type", "Unsupported Media Type"),
    422: ("unprocessable-entity", "Unprocessable Entity"),
    429: ("rate-limit-exceeded", "Too Many Requests"),
    500: ("internal-error", "Internal Server Error"),
    502: ("bad-gateway", "Bad Gateway"),
    503: ("service-unavailable", "Service Unavailable"),
    504: ("gateway-timeout", "Gateway Timeout"),
}

log = logging.getLogger("petstore.problems")


def problem_body(
    status: int,
    detail: str | None = None,
    *,
    title: str | None = None,
    slug: str | None = None,
    instance: str | None = None,
    errors: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    default_slug, default_title = TITLES.get(status, ("error", "Error"))
    body: dict[str, Any] = {
        "type": TYPE_BASE + (slug or default_slug),
        "title": title or default_title,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    return body


def problem_response(
    status: int,
    detail: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> ConnexionResponse:
    """For Connexion error handlers (they must return a ConnexionResponse)."""
    return ConnexionResponse(
        status_code=status,
        mimetype=PROBLEM_JSON,
        body=orjson.dumps(problem_body(status, detail, **kwargs)),
        headers=dict(headers or {}),
    )


async def send_problem(
    send: Any, status: int, detail: str, *, headers: dict[str, str] | None = None, **kwargs: Any
) -> None:
    """Write a problem straight to an ASGI ``send`` (for middleware in front of Connexion)."""
    body = orjson.dumps(problem_body(status, detail, **kwargs))
    raw_headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    for name, value in (headers or {}).items():
        raw_headers.append((name.lower().encode(), value.encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
