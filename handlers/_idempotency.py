"""``Idempotency-Key`` for REST operations that create or charge (rules: services/idempotency.py).

The first response is stored as sent (status, body, Location); a replay adds
``Idempotent-Replayed: true``. Client errors (4xx, e.g. a declined card) are stored like
successes; invalid input (422), refusals that pass with time or with the caller's other orders
(429 over a budget, 409 at the cap on unpaid orders) and server or processor failures (5xx)
release the key so that a corrected or repeated request with it runs again.

A caller with neither a bearer token nor an order's X-Order-Token is scoped by its client
address, which other guests behind the same NAT share: such a caller must send an unguessable
key (a UUID, or at least 32 characters of letters, digits, ``-`` and ``_`` that look random),
or another guest could replay its response (and the guestToken in it)."""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import orjson
from connexion import request
from cryptography.fernet import Fernet
from starlette.responses import Response

from auth.principals import client_address
from handlers._context import container
from handlers.problems import domain_problem
from services.shared import idempotency as keys
from services.shared import secrets
from services.shared.errors import (
    DomainError,
    FieldError,
    InvalidInput,
    RecentlyHeld,
    TooManyAttempts,
    UnpaidOrderLimit,
)
from services.shared.principal import Principal, address_key

STORED_HEADERS = ("location", "etag", "content-type")
NOT_RESULTS = (InvalidInput, TooManyAttempts, UnpaidOrderLimit, RecentlyHeld)
"""Refusals that are not the request's result: the same request may succeed later."""
_RANDOM_LOOKING = re.compile(r"^[A-Za-z0-9_-]{32,255}$")
MIN_DISTINCT = 12
_UUID_FORM = re.compile(
    r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
)
RANDOM_UUID_VERSIONS = (4, 7)
"""UUIDs whose bits are (mostly) random: version 4 (122 random bits), version 7 (74)."""
MIN_UUID_DISTINCT = 8
"""A random UUID has about 15 distinct characters (``-`` included); fewer than 8 happens by
chance about once in a billion, a hand-made pattern (``00000000-0000-4000-8000-000000000001``)
always."""
"""A 32-character key of letters, digits, ``-`` and ``_`` drawn at random has about 24
distinct characters (a hex string about 14); fewer than 12 is a pattern, not a secret."""


def _caller(who: Principal, guest_token: str | None) -> str:
    if who.subject is not None:
        return f"user:{who.subject}"
    if guest_token:
        return "guest:" + hashlib.sha256(guest_token.encode()).hexdigest()[:32]
    return "ip:" + address_key(client_address(request.scope))


def unguessable(key: str) -> bool:
    """A random UUID (version 4 or 7, in its usual 36-character form, with at least
    MIN_UUID_DISTINCT distinct characters), or at least 32 characters of letters, digits, ``-``
    and ``_`` with at least MIN_DISTINCT distinct ones. Any other UUID (the nil UUID,
    ``00000000-0000-0000-0000-000000000001``, a version 1 made of a clock and a MAC address) is
    refused: its bits are not random."""
    if _UUID_FORM.match(key):
        parsed = uuid.UUID(key)
        return (
            parsed.variant == uuid.RFC_4122
            and parsed.version in RANDOM_UUID_VERSIONS
            and len(set(key.lower())) >= MIN_UUID_DISTINCT
        )
    return bool(_RANDOM_LOOKING.match(key)) and len(set(key)) >= MIN_DISTINCT


def _check_guest_key(key: str) -> None:
    if not unguessable(key):
        raise InvalidInput(
            [
                FieldError(
                    "Idempotency-Key",
                    "without a bearer token the key must be unguessable: a random UUID "
                    "(version 4 or 7), or at least 32 random letters, digits, '-' or '_'",
                    "idempotency_key_guessable",
                )
            ]
        )


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
    if who.subject is None and not guest_token:  # scoped by the client address only
        _check_guest_key(key)
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
            # the same key); nor is a server failure, nor a budget or the unpaid-order cap (the
            # same request succeeds later). Declines and other conflicts are results.
            if problem.status_code < 500 and not isinstance(exc, NOT_RESULTS):
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
