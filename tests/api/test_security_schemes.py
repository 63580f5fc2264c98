"""Every secured operation accepts the token under either scheme, ``oauth2`` (with its scopes)
or ``bearerAuth``, and neither lets a token without the operation's scopes through: Connexion
tries the alternatives in order and admits the first that passes, so ``bearerAuth`` applies the
operation's ``oauth2`` scopes itself (auth/security.py). Checked for every operation of both
specs, with the refusal exactly as documented (403, ``WWW-Authenticate`` naming the scopes)."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import jwt
import pytest

from auth.tokens import TokenService
from settings import Settings
from tests.conftest import Api
from tests.spec.test_spec import MODULES, OPERATIONS

SECURED = [
    (path, method, op)
    for path, method, op in OPERATIONS
    if (op.get("security", MODULES[op["x-module"]].get("security")) or [])
]


def _requirements(op: dict[str, Any]) -> list[dict[str, list[str]]]:
    found = op.get("security", MODULES[op["x-module"]].get("security"))
    return list(found or [])


def _url(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), path)


def _token(api: Api, tokens: TokenService, scopes: frozenset[str]) -> str:
    """A token of the tenant's admin (whose role grants every scope) carrying only ``scopes``,
    issued by the app's own issuer as a narrower token."""
    subject = jwt.decode(api.admin_token(), options={"verify_signature": False})["sub"]
    return str(tokens.issue(uuid.UUID(subject), "admin", api.tenant or "", scopes).token)


def _body(op: dict[str, Any]) -> dict[str, Any]:
    return {"json": {}} if "requestBody" in op else {}


@pytest.fixture(scope="module")
def bare(client: Any, settings: Settings, app: Any) -> tuple[Api, str, TokenService]:
    """A tenant, a token of an account whose role grants everything, issued with no scope, and
    the app's issuer."""
    api = Api(client, settings, str(uuid.uuid4()))
    tokens: TokenService = app.container.tokens
    return api, _token(api, tokens, frozenset()), tokens


@pytest.mark.parametrize(
    ("path", "method", "op"),
    [o for o in SECURED if _requirements(o[2])[0]["oauth2"] and {} not in _requirements(o[2])],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_a_token_without_the_scopes_is_403_under_either_scheme(
    bare: tuple[Api, str, TokenService],
    path: str,
    method: str,
    op: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    api, token, _ = bare
    required = _requirements(op)[0]["oauth2"]
    with caplog.at_level(logging.ERROR, logger="petstore.security"):
        r = api.request(method.upper(), _url(path), token, **_body(op))
    assert r.status_code == 403, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"] == (
        f'Bearer realm="petstore", error="insufficient_scope", scope="{" ".join(sorted(required))}"'
    )
    assert r.json()["detail"].endswith(f"Required: {required}")
    # bearerAuth was tried too and knew the operation's scopes (else it logs and refuses)
    assert not caplog.records


@pytest.mark.parametrize(
    ("path", "method", "op"), SECURED, ids=lambda v: v if isinstance(v, str) else ""
)
def test_a_token_with_the_scopes_gets_past_the_security_check(
    bare: tuple[Api, str, TokenService], path: str, method: str, op: dict[str, Any]
) -> None:
    """Whatever else the request lacks (a body, an existing id), it is not refused for its
    credentials: not 401, and not 403 for scopes."""
    api, _, tokens = bare
    token = _token(api, tokens, frozenset(_requirements(op)[0]["oauth2"]))
    r = api.request(method.upper(), _url(path), token, **_body(op))
    assert r.status_code != 401, r.text
    assert "insufficient_scope" not in r.headers.get("www-authenticate", "")
