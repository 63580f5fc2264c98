"""One issuer, verifiable by anyone, through the real app: tokens are RFC 9068 JWTs signed ES256;
the JWK Set at /.well-known/jwks.json verifies them; two app instances (two workers) on one var/
agree on the key and follow ``manage.py rotate-keys``; a configured key is used and nothing is
written."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from starlette.testclient import TestClient

from app import create_app
from auth.keys import KEYS_DIRNAME, SigningKey, new_private_key
from settings import ROOT, Settings
from tests.conftest import ADMIN, Api, jwks_claims

JWKS = "/.well-known/jwks.json"


class TestJwksEndpoint:
    def test_public_keys_only_cacheable_briefly(self, client: TestClient) -> None:
        r = client.get(JWKS)
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/json"
        assert r.headers["cache-control"] == "public, max-age=60"
        (key,) = r.json()["keys"]
        assert set(key) == {"kty", "crv", "x", "y", "kid", "use", "alg"}
        assert (key["kty"], key["crv"], key["use"], key["alg"]) == ("EC", "P-256", "sig", "ES256")
        head = client.head(JWKS)
        assert head.status_code == 200
        assert head.content == b""

    def test_other_methods_are_405_and_foreign_hosts_400(self, client: TestClient) -> None:
        r = client.post(JWKS, json={})
        assert r.status_code == 405
        assert r.headers["allow"] == "GET, HEAD"
        assert r.headers["content-type"] == "application/problem+json"
        assert client.get(JWKS, headers={"Host": "evil.example"}).status_code == 400


class TestTokensAreRfc9068:
    def test_header_and_claims(self, api: Api, settings: Settings) -> None:
        user, token = api.user_token()
        header = jwt.get_unverified_header(token)
        published = {k["kid"] for k in api.client.get(JWKS).json()["keys"]}
        assert header["typ"] == "at+jwt"
        assert header["alg"] == "ES256"
        assert header["kid"] in published
        claims = jwks_claims(api.client, token, settings.jwt_issuer)
        assert {"iss", "exp", "aud", "sub", "client_id", "iat", "jti", "scope"} <= set(claims)
        assert claims["iss"] == settings.jwt_issuer
        assert claims["aud"] == "petstore-api"
        assert claims["sub"] == user["id"]
        assert claims["client_id"] == "petstore-api"
        assert claims["exp"] - claims["iat"] == settings.token_ttl_seconds
        assert (claims["tid"], claims["role"], claims["ver"]) == (api.tenant, "user", 0)

    def test_registration_issues_the_same_kind_of_token(self, api: Api, settings: Settings) -> None:
        name = f"u{uuid.uuid4().hex[:10]}"
        r = api.request(
            "POST",
            "/users",
            json={"username": name, "email": f"{name}@example.com", "password": "pw-12345678",
                  "firstName": "A", "lastName": "B"},
        )  # fmt: skip
        assert r.status_code == 201, r.text
        token = r.json()["token"]["token"]
        assert jwt.get_unverified_header(token)["typ"] == "at+jwt"
        assert jwks_claims(api.client, token, settings.jwt_issuer)["sub"] == r.json()["id"]


def _manage(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PETSTORE_VAR_DIR": str(settings.var_dir),
        "DATABASE_URL": settings.database_url,
        "PETSTORE_JWT_SECRET": settings.jwt_secret,
    }
    if settings.jwt_private_key:
        env["PETSTORE_JWT_PRIVATE_KEY"] = settings.jwt_private_key
    return subprocess.run(  # noqa: S603 - our interpreter and manage.py
        [sys.executable, "manage.py", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


@pytest.fixture
def two_workers(settings: Settings, tmp_path: Path) -> Iterator[tuple[Api, Api, Settings]]:
    """Two app instances on the session's database and one fresh var/ of their own."""
    shared = settings.with_overrides(var_dir=tmp_path / "var")
    tenant = str(uuid.uuid4())
    with create_app(shared).test_client() as a, create_app(shared).test_client() as b:
        yield Api(a, shared, tenant), Api(b, shared, tenant), shared


def _kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def _jwks(api: Api) -> list[str]:
    return [k["kid"] for k in api.client.get(JWKS).json()["keys"]]


def _me(api: Api, user: dict[str, Any], token: str) -> int:
    return int(api.request("GET", f"/users/{user['id']}", token).status_code)


def test_two_workers_agree_and_follow_a_rotation(two_workers: tuple[Api, Api, Settings]) -> None:
    a, b, settings = two_workers
    user = a.register()
    before = a.login(user["username"])
    assert _jwks(a) == _jwks(b) == [_kid(before)]
    assert _kid(b.login(user["username"])) == _kid(before)
    assert _me(b, user, before) == 200

    rotated = _manage(settings, "rotate-keys")
    assert rotated.returncode == 0, rotated.stderr
    new_kid = rotated.stdout.split()[3]
    # Both sign with the new key at once, publish both keys, and accept both tokens.
    after_a, after_b = a.login(user["username"]), b.login(user["username"])
    assert _kid(after_a) == _kid(after_b) == new_kid
    assert _jwks(a) == _jwks(b) == [new_kid, _kid(before)]
    for worker in (a, b):
        for token in (before, after_a, after_b):
            assert _me(worker, user, token) == 200
            assert jwks_claims(worker.client, token, settings.jwt_issuer)["sub"] == user["id"]

    # Pruned (here at once, as for a leaked key): the old key's tokens end on both workers.
    dropped = _manage(settings, "rotate-keys", "--drop-previous")
    assert dropped.returncode == 0, dropped.stderr
    assert len(_jwks(a)) == len(_jwks(b)) == 1
    for worker in (a, b):
        deadline = time.monotonic() + 30  # a worker lists var/ at least once a second
        while _me(worker, user, before) != 401 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _me(worker, user, before) == 401
        assert _me(worker, user, after_a) == 401  # signed by the key dropped just now
        assert _me(worker, user, worker.login(user["username"])) == 200


def test_a_configured_key_is_used_and_nothing_is_written(
    settings: Settings, tmp_path: Path
) -> None:
    private = new_private_key()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,  # SEC1 "EC PRIVATE KEY", as openssl writes
        serialization.NoEncryption(),
    ).decode()
    var = tmp_path / "var"
    configured = settings.with_overrides(var_dir=var, jwt_private_key=pem)
    with create_app(configured).test_client() as client:
        api = Api(client, configured, None)
        token = api.login(*ADMIN)
        assert _kid(token) == SigningKey.of(private).kid
        assert _jwks(api) == [SigningKey.of(private).kid]
        assert jwks_claims(client, token, configured.jwt_issuer)["role"] == "admin"
    assert not (var / KEYS_DIRNAME).exists()
    refused = _manage(configured, "rotate-keys")
    assert refused.returncode == 1
    assert "PETSTORE_JWT_PRIVATE_KEY" in refused.stderr
    assert not (var / KEYS_DIRNAME).exists()
