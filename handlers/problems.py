"""REST errors: domain errors (by the table in protocols/errors.py) and Connexion's own problems
→ problem+json.

Registered on the Connexion app (not the inner app) so routing, security and validation errors
pass through here too."""

from __future__ import annotations

import logging
from typing import Any

from connexion.exceptions import (
    NonConformingResponse,
    OAuthProblem,
    OAuthScopeProblem,
    ProblemException,
)
from connexion.lifecycle import ConnexionRequest
from connexion.lifecycle import ConnexionResponse as Response
from starlette.exceptions import HTTPException

from protocols.errors import INTERNAL, codes_for, field_errors, retry_after
from services.shared.errors import AuthenticationFailed, DomainError
from web.problems import problem_response

log = logging.getLogger("petstore.errors")

BEARER_CHALLENGE = 'Bearer realm="petstore"'


def domain_problem(exc: DomainError, instance: str) -> Response:
    """The problem+json response for a domain error (also what idempotency keys store); the
    status and type come from the one error table (protocols/errors.py)."""
    codes = codes_for(exc)
    if codes is INTERNAL:
        log.error("unmapped domain error", exc_info=exc)
        return problem_response(500, "An unexpected error occurred.", instance=instance)
    headers: dict[str, str] = {}
    wait = retry_after(exc)
    if wait is not None:
        headers["Retry-After"] = str(wait)
    elif isinstance(exc, AuthenticationFailed):
        headers["WWW-Authenticate"] = BEARER_CHALLENGE
    return problem_response(
        codes.http,
        exc.detail,
        slug=codes.problem,
        instance=instance,
        errors=field_errors(exc),
        headers=headers,
    )


def on_domain_error(request: ConnexionRequest, exc: DomainError) -> Response:
    return domain_problem(exc, request.url.path)


def on_problem(request: ConnexionRequest, exc: HTTPException) -> Response:
    """Connexion's problems and Starlette HTTP errors (e.g. its 403 scope error) in our format."""
    status = exc.status_code
    if isinstance(exc, NonConformingResponse) or status >= 500:
        log.error("server problem: %s", exc.detail, extra={"path": request.url.path})
        return problem_response(500, "An unexpected error occurred.", instance=request.url.path)
    headers = dict(exc.headers or {})
    ext: dict[str, Any] = getattr(exc, "ext", None) or {}
    errors = ext.get("errors")
    slug = None
    title = None
    if status == 400:
        slug, title = "validation-error", "Validation Error"
        if not errors:
            errors = [{"field": "request", "message": str(exc.detail), "code": "invalid"}]
    if status == 401 or isinstance(exc, OAuthProblem):
        headers["WWW-Authenticate"] = BEARER_CHALLENGE
    if isinstance(exc, OAuthScopeProblem):
        required = " ".join(sorted(exc.required_scopes or []))
        headers["WWW-Authenticate"] = (
            f'{BEARER_CHALLENGE}, error="insufficient_scope", scope="{required}"'
        )
    return problem_response(
        status,
        str(exc.detail) if exc.detail else None,
        title=title,
        slug=slug,
        instance=request.url.path,
        errors=errors,
        headers=headers,
    )


def on_unicode_error(request: ConnexionRequest, exc: UnicodeDecodeError) -> Response:
    return problem_response(
        400,
        "The request is not valid UTF-8.",
        slug="validation-error",
        title="Validation Error",
        instance=request.url.path,
        errors=[{"field": "body", "message": "not valid UTF-8", "code": "encoding"}],
    )


def on_unexpected(request: ConnexionRequest, exc: Exception) -> Response:
    log.error("unhandled exception on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(500, "An unexpected error occurred.", instance=request.url.path)


def register(app: Any) -> None:
    app.add_error_handler(DomainError, on_domain_error)
    app.add_error_handler(HTTPException, on_problem)
    app.add_error_handler(ProblemException, on_problem)
    app.add_error_handler(UnicodeDecodeError, on_unicode_error)
    app.add_error_handler(Exception, on_unexpected)
