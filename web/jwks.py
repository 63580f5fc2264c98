"""``GET /.well-known/jwks.json``: the public keys that verify this server's access tokens (RFC
7517 JWK Set; each key ``kty``, ``crv``, ``x``, ``y``, ``kid``, ``use: sig``, ``alg: ES256``;
nothing private), the current key and the previous ones still accepted (auth/keys.py).

Outside the versioned API, like /healthz, but inside the Host allow-list. Public, cacheable for
``MAX_AGE_SECONDS``: a verifier that meets an unknown ``kid`` (a rotation newer than its copy)
fetches the set again, as PyJWT's PyJWKClient and Authlib do. ``GET`` and ``HEAD`` only (405
otherwise)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from auth.keys import KeyRing
from web.problems import send_problem

JWKS_PATH = "/.well-known/jwks.json"
MAX_AGE_SECONDS = 60


class JwksMiddleware:
    def __init__(self, app: ASGIApp, keys: KeyRing) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != JWKS_PATH:
            await self.app(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD"):
            detail = f"Method {scope['method']} is not allowed on {JWKS_PATH}."
            await send_problem(
                send, 405, detail, headers={"Allow": "GET, HEAD"}, instance=JWKS_PATH
            )
            return
        body = self.keys.jwks_json()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", f"public, max-age={MAX_AGE_SECONDS}".encode()),
            (b"access-control-allow-origin", b"*"),  # browsers' clients may verify too
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )
