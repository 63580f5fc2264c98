"""Repeated List Pets and Get Pet answered from the read cache in front of Connexion's
per-operation layers.

A GET of ``/v1/pets`` (or of ``/v1/pets/<id>`` with no query string) without a credential whose
exact query string (or id, as written), tenant (X-Tenant-ID) and API base already have an
encoded body in the read cache at the tenant's current version is answered here: the same
bytes, ``ETag``, ``Cache-Control`` and ``Vary`` that handlers.pets put there (or ``304`` for a
matching If-None-Match), without Connexion's routing, security, parameter parsing, handler call
and response validation. Nothing is skipped in substance:

- the entry was stored by the handler, after Connexion validated that very query string (or
  id) and tenant header (an invalid one never gets an entry) and before the body was sent
  through response validation, which it passed (the bytes are the same);
- both operations are open to everyone (``security: []``): a request with ``Authorization``
  takes the full path, where the token is checked and may choose another tenant;
- everything outside Connexion still runs first: request id and access log, metrics, the Host
  allow-list, the Accept check, body limits and the per-client rate limit (this middleware
  sits inside them, next to the other protocol mounts).

Measured in README "Measured decisions". ``tests/api/test_fastpath.py`` checks that a repeat is
served here and is byte-for-byte and header-for-header what the full path answers.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from handlers._conditional import cache_headers, tag_matches
from handlers.pets import list_key, pet_body_key
from settings import API_PREFIX
from web.container import Container
from web.urls import scope_api_base

LIST_PATH = API_PREFIX + "/pets"
PET_PREFIX = LIST_PATH + "/"


class CachedReadMiddleware:
    def __init__(self, app: ASGIApp, container: Container) -> None:
        self.app = app
        self.container = container

    @staticmethod
    def _entry_key(scope: Scope, base: str) -> tuple[str, str, object] | None:
        path = scope["path"]
        if path == LIST_PATH:
            return list_key(base, scope["query_string"])
        pet_id = path[len(PET_PREFIX) :]
        if path.startswith(PET_PREFIX) and "/" not in pet_id and not scope["query_string"]:
            return pet_body_key(base, pet_id)
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or not scope["path"].startswith(LIST_PATH)
        ):
            await self.app(scope, receive, send)
            return
        tenant: str | None = None
        if_none_match: str | None = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                await self.app(scope, receive, send)
                return
            if name == b"x-tenant-id" and tenant is None:
                tenant = value.decode("latin-1").lower()
            elif name == b"if-none-match" and if_none_match is None:
                if_none_match = value.decode("latin-1")
        tenant = tenant or ""
        container = self.container
        cache = container.pets.cache
        key = self._entry_key(scope, scope_api_base(container.settings, scope))
        hit = None if key is None else cache.peek(tenant, await cache.version(tenant), key)
        if hit is None:
            await self.app(scope, receive, send)
            return
        container.reads_served_from_cache += 1
        tag, body = hit
        headers = [(k.lower().encode(), v.encode()) for k, v in cache_headers(tag).items()]
        if tag is not None and tag_matches(if_none_match, tag):
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        headers += [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
