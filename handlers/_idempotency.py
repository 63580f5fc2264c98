"""``Idempotency-Key`` for REST operations that create or charge (rules: services/idempotency.py).

The first response is stored as sent (status, body, Location); a replay adds
``Idempotent-Replayed: true``. Client errors (4xx, e.g. a declined card) are stored like
successes; invalid input (422) and server or processor failures (5xx) release the key so that
a corrected or repeated request with it runs again."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import orjson
from connexion import request
from cryptography.fernet import Fernet
from starlette.responses import Response

from handlers._context import container
from handlers.problems import domain_problem
from services.shared import idempotency as keys
from services.shared import secrets
from services.shared.errors import DomainError, InvalidInput
from services.shared.principal import Principal

STORED_HEADERS = ("location", "etag", "content-type")


def _caller(who: Principal, guest_token: str | None) -> str:
    if who.subject is not None:
        return f"user:{who.subject}"
    if guest_token:
        return "guest:" + hashlib.sha256(guest_token.encode()).hexdigest()[:32]
    client = request.scope.get("client")
    return f"ip:{client[0] if client else 'unknown'}"


def _fingerprint(operation: str, payload: Any) -> str:
    """Keyed with a server secret: the request may hold card data, and a plain hash of it could
    be brute-forced (a CVC has only 1,000 values)."""
    secret = container().settings.jwt_secret.encode()
    key = hmac.new(secret, b"petstore idempotency fingerprints v1", hashlib.sha256).digest()
    data = orjson.dumps([operation, payload], option=orjson.OPT_SORT_KEYS)
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def _cipher() -> Fernet:
    """Stored responses are encrypted at rest: a guest's first response holds the order's
    guestToken, which the database must not keep in clear (it keeps only its hash otherwise)."""
    return secrets.fernet(container().settings.jwt_secret, b"petstore idempotency-key bodies v1")


def _stored(response: Response) -> keys.StoredResponse:
    headers = {k: v for k, v in response.headers.items() if k in STORED_HEADERS}
    return keys.StoredResponse(
        response.status_code, headers, _cipher().encrypt(bytes(response.body))
    )


async def idempotent(
    operation: str,
    payload: Any,
    who: Principal,
    produce: Callable[[], Awaitable[Response]],
    guest_token: str | None = None,
) -> Response:
    key = request.headers.get("idempotency-key")
    if key is None:
        return await produce()
    db = container().db
    scope = keys.KeyScope(
        who.tenant, _caller(who, guest_token), key, _fingerprint(operation, payload)
    )
    replay = await keys.begin(db, scope)
    if replay is not None:
        headers = {**replay.headers, "Idempotent-Replayed": "true"}
        return Response(_cipher().decrypt(replay.body), replay.status, headers=headers)
    try:
        response = await produce()
    except DomainError as exc:
        problem = domain_problem(exc, request.url.path)
        with anyio.CancelScope(shield=True):
            # As Stripe: invalid input is not a result (the client fixes it and retries with
            # the same key); nor is a server failure. Declines and conflicts are results.
            if problem.status_code < 500 and not isinstance(exc, InvalidInput):
                await keys.finish(db, scope, _stored(_as_response(problem)))
            else:
                await keys.release(db, scope)
        raise
    except BaseException:
        with anyio.CancelScope(shield=True):
            await keys.release(db, scope)
        raise
    with anyio.CancelScope(shield=True):
        await keys.finish(db, scope, _stored(response))
    return response


def _as_response(problem: Any) -> Response:
    return Response(
        problem.body,
        problem.status_code,
        headers=dict(problem.headers or {}),
        media_type=problem.mimetype,
    )
