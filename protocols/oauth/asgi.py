"""``/oauth/...`` and ``/.well-known/oauth-authorization-server`` as ASGI middleware inside the
REST app's own middleware (request id, access log, Host check, body-size limit), like GraphQL:
the Flask pages (protocols.oauth.pages) run behind a2wsgi's WSGIMiddleware, every other path
is passed on untouched.

Budgets (the per-client rate limiter, counted here since REST's middleware only counts /v1):
every request against the general budget; token requests, device authorizations, logins on the
pages (their POSTs) and registrations against budgets of their own. Over budget: 429 with an
RFC 6749-style JSON error and Retry-After.

a2wsgi runs Flask in a thread pool of its own (``OAUTH_THREADS``); each request holds a thread
while its service calls run on the event loop, so the pages never block the loop, and at most
that many OAuth requests are served at once (the rest queue). The body is read here, on the
event loop, before a thread is taken: at most ``FORM_LIMIT`` bytes within
``BODY_DEADLINE_SECONDS`` (else 413 or 408), so a client that sends slowly holds no thread; and
every service call from a thread has a deadline of its own (protocols.oauth.bridge).
"""

from __future__ import annotations

import asyncio

import orjson
from a2wsgi import WSGIMiddleware
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from auth.principals import with_origin
from protocols.oauth.bridge import CURRENT, RequestContext
from protocols.oauth.pages import FORM_LIMIT, METADATA_PATH, create_flask_app
from services.shared.principal import anonymous
from web.container import Container
from web.middleware import BodyTooLarge, rate_limit, rate_limit_headers
from web.problems import send_problem

OAUTH_PREFIX = "/oauth"
OAUTH_THREADS = 8
BODY_DEADLINE_SECONDS = 10.0
TOKEN_BUDGET = "oauth:token"  # noqa: S105 (a budget's name)
DEVICE_BUDGET = "oauth:device"
LOGIN_BUDGET = "oauth:login"
REGISTER_BUDGET = "oauth:register"
BUDGETS = {
    "/oauth/token": TOKEN_BUDGET,
    "/oauth/device/authorize": DEVICE_BUDGET,
    "/oauth/authorize": LOGIN_BUDGET,
    "/oauth/device": LOGIN_BUDGET,
    "/oauth/register": REGISTER_BUDGET,
}


class OAuthMiddleware:
    def __init__(self, app: ASGIApp, container: Container) -> None:
        self.app = app
        self.container = container
        self.wsgi = WSGIMiddleware(
            create_flask_app(  # type: ignore[arg-type]
                container.settings.jwt_secret,
                secure_cookie=(container.settings.public_url or "").startswith("https://"),
            ),
            workers=OAUTH_THREADS,
        )

    @staticmethod
    def handles(path: str) -> bool:
        return path in (METADATA_PATH, OAUTH_PREFIX) or path.startswith(OAUTH_PREFIX + "/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.handles(scope["path"]):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        budget = BUDGETS.get(path) if scope["method"] == "POST" else None
        decision = await rate_limit(self.container, scope, budget)
        if decision is not None and decision.exceeded:
            body = orjson.dumps(
                {
                    "error": "too_many_requests",
                    "error_description": f"Rate limit exceeded. Please wait {decision.reset} "
                    "seconds before making another request.",
                }
            )
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                *(
                    (k.lower().encode(), v.encode())
                    for k, v in rate_limit_headers(decision).items()
                ),
            ]
            await send({"type": "http.response.start", "status": 429, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        try:
            body = await asyncio.wait_for(read_body(receive, FORM_LIMIT), BODY_DEADLINE_SECONDS)
        except BodyTooLarge as exc:
            await send_problem(send, 413, str(exc.detail), instance=path)
            return
        except TimeoutError:
            await send_problem(
                send,
                408,
                f"The request body did not arrive within {BODY_DEADLINE_SECONDS:g} seconds.",
                instance=path,
                headers={"Connection": "close"},
            )
            return
        sent = Headers(scope=scope)
        CURRENT.set(
            RequestContext(
                loop=asyncio.get_running_loop(),
                container=self.container,
                origin=with_origin(anonymous(), scope),
                authorization=sent.get("authorization"),
                tenant_header=sent.get("x-tenant-id"),
            )
        )
        raw = [
            (k.lower().encode(), v.encode())
            for k, v in (rate_limit_headers(decision) if decision else {}).items()
        ]

        async def send_with_headers(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start" and raw:
                message["headers"] = [*message.get("headers", []), *raw]  # type: ignore[misc]
            await send(message)

        await self.wsgi(scope, replay(body), send_with_headers)  # type: ignore[arg-type]


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body, or BodyTooLarge past ``limit`` bytes (whatever Content-Length
    said; the guard in front counts too)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replay(body: bytes) -> Receive:
    """An ASGI ``receive`` that hands over ``body`` at once (a2wsgi's thread never waits on the
    client), then reports a disconnect."""
    sent = False

    async def receive() -> dict[str, object]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive  # type: ignore[return-value]
