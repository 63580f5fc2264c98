"""A third party verifies our tokens with nothing but the published JWK Set: PyJWT's PyJWKClient
against http://127.0.0.1:<port>/.well-known/jwks.json of a live server with two uvicorn workers,
which created one key between them on first start and follow ``manage.py rotate-keys``."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest

from auth.keys import KEYS_DIRNAME
from settings import DEFAULT_ISSUER, ROOT
from tests.conftest import ADMIN
from tests.live.conftest import Live, server_env
from tests.servers import uvicorn_process


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Live, dict[str, str]]]:
    var = tmp_path_factory.mktemp("jwks")
    env = server_env(var)
    with uvicorn_process("app:app_from_env", env, var / "server.log", workers=2) as (origin, _):
        yield origin, Live(origin + "/v1", var), env


def _verify(client: jwt.PyJWKClient, token: str) -> dict[str, Any]:
    """What a resource server of someone else's does: the key named by the token's kid, from
    the JWK Set alone; RFC 9068's checks (typ, alg, iss, aud, exp)."""
    assert jwt.get_unverified_header(token)["typ"] == "at+jwt"
    key = client.get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(
        token,
        key.key,
        algorithms=["ES256"],
        audience="petstore-api",
        issuer=DEFAULT_ISSUER,
        options={"require": ["iss", "aud", "exp", "iat", "sub", "jti", "client_id"]},
    )
    return claims


def _kids(tokens: list[str]) -> set[str]:
    return {jwt.get_unverified_header(t)["kid"] for t in tokens}


def test_two_workers_made_one_owner_only_key(server: tuple[str, Live, dict[str, str]]) -> None:
    origin, live, _ = server
    assert live.var is not None
    ring = live.var / KEYS_DIRNAME
    (key_file,) = ring.glob("*.pem")
    assert ring.stat().st_mode & 0o777 == 0o700
    assert key_file.stat().st_mode & 0o777 == 0o600
    tokens = [live.login(*ADMIN) for _ in range(8)]  # spread over both workers
    assert len(_kids(tokens)) == 1
    r = httpx.get(f"{origin}/.well-known/jwks.json")
    assert r.headers["cache-control"] == "public, max-age=60"
    assert [k["kid"] for k in r.json()["keys"]] == list(_kids(tokens))


def test_a_third_party_verifies_with_the_jwks_across_a_rotation(
    server: tuple[str, Live, dict[str, str]],
) -> None:
    origin, live, env = server
    # cooldown_duration=0: fetch the set again at once for an unknown kid. PyJWT's default
    # waits up to 30 s after its last fetch; the new key signs at once (README, Tokens and keys).
    verifier = jwt.PyJWKClient(f"{origin}/.well-known/jwks.json", cooldown_duration=0)
    before = live.token
    claims = _verify(verifier, before)
    assert claims["sub"] == live.user_id
    assert claims["client_id"] == "petstore-api"

    rotated = subprocess.run(
        [sys.executable, "manage.py", "rotate-keys"],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert rotated.returncode == 0, rotated.stderr
    new_kid = rotated.stdout.split()[3]

    after = [live.login(*ADMIN) for _ in range(8)]  # both workers sign with the new key
    assert _kids(after) == {new_kid}
    for token in [before, *after]:  # the verifier fetches the set again for the unknown kid
        _verify(verifier, token)
    user = httpx.get(
        f"{live.base}/users/{live.user_id}", headers={"Authorization": f"Bearer {before}"}
    )
    assert user.status_code == 200  # the previous key's token is still valid on the server


def test_a_tampered_token_fails_the_third_partys_check(
    server: tuple[str, Live, dict[str, str]],
) -> None:
    origin, live, _ = server
    head, payload, signature = live.token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] += " write:pets admin"
    raised = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    forged = f"{head}.{raised}.{signature}"
    with pytest.raises(jwt.PyJWTError):
        _verify(jwt.PyJWKClient(f"{origin}/.well-known/jwks.json"), forged)
