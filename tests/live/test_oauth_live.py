"""The OAuth 2.0 authorization server over HTTP against a live uvicorn server, with Authlib's
client: authorization code + PKCE (login and consent pages driven with a cookie-keeping HTTP
client), refresh rotation, the device flow, revocation, introspection, registration and the
server metadata; every refusal answers its RFC error code. Every answer of /oauth and
/.well-known seen here is checked against spec/oauth.yaml at the end (its status declared for
its operation)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import yaml
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client, OAuthError
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from sqlalchemy import create_engine, text

from models.database import sync_url
from protocols.oauth.asgi import BODY_DEADLINE_SECONDS, OAUTH_THREADS
from services.oauth.clients import digest
from settings import ROOT, Settings, normalize_database_url
from tests.live.conftest import Live, server_env
from tests.servers import uvicorn_process
from tests.spec.recorder import Observation, check

REDIRECT = "http://127.0.0.1:9/callback"
DEVICE = "urn:ietf:params:oauth:grant-type:device_code"
PASSWORD = "live-pass-123"


class OAuthLive:
    def __init__(self, origin: str, var: Path, env: dict[str, str]) -> None:
        self.env = env
        self.origin = origin
        self.api = Live(origin + "/v1")
        self.seen: set[Observation] = set()
        self.db = create_engine(sync_url(env["DATABASE_URL"]))

    def record(self, response: httpx.Response) -> None:
        path = response.request.url.path
        if path.startswith("/oauth") or path.startswith("/.well-known/oauth"):
            self.seen.add(
                Observation(response.request.method, path, response.status_code, frozenset())
            )

    def http(self) -> httpx.Client:
        """A browser-like client: keeps cookies, never follows redirects."""
        return httpx.Client(event_hooks={"response": [self.record]}, timeout=30)

    def oauth_client(self, client_id: str, **kw: Any) -> OAuth2Client:
        kw.setdefault("token_endpoint_auth_method", "none")
        return OAuth2Client(client_id, event_hooks={"response": [self.record]}, timeout=30, **kw)

    def register(self, token: str | None = None, **metadata: Any) -> httpx.Response:
        body = {
            "client_name": "Live App",
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
            "scope": "read:pets read:user write:user",
            "grant_types": ["authorization_code", "refresh_token", DEVICE],
            **metadata,
        }
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with self.http() as c:
            return c.post(f"{self.origin}/oauth/register", json=body, headers=headers)

    def client_id(self, **metadata: Any) -> str:
        r = self.register(self.api.admin, **metadata)
        assert r.status_code == 201, r.text
        return str(r.json()["client_id"])

    def user(self) -> tuple[str, str]:
        """A fresh account (username, id) with PASSWORD."""
        name = f"u{uuid.uuid4().hex[:12]}"
        r = httpx.post(
            f"{self.api.base}/users",
            json={"username": name, "email": f"{name}@example.com", "password": PASSWORD,
                  "firstName": "O", "lastName": "Auth"},
        )  # fmt: skip
        assert r.status_code == 201, r.text
        return name, str(r.json()["id"])

    def sql(self, statement: str, **params: Any) -> None:
        with self.db.begin() as conn:
            conn.execute(text(statement), params)


def self_time(live: OAuthLive, moment: datetime) -> datetime:
    """A time as the database's column takes it (SQLite: naive UTC text)."""
    return moment.replace(tzinfo=None) if live.db.dialect.name == "sqlite" else moment


def database_env() -> dict[str, str]:
    """On the PostgreSQL run (DATABASE_URL set), the live server uses that database too."""
    url = normalize_database_url(os.environ.get("DATABASE_URL") or "")
    return {"DATABASE_URL": url} if url.startswith("postgresql") else {}


@pytest.fixture(scope="module")
def live_oauth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthLive]:
    var = tmp_path_factory.mktemp("oauth")
    env = server_env(var, PETSTORE_OAUTH_RATE_LIMIT="0", **database_env())
    with uvicorn_process("app:app_from_env", env, var / "server.log") as (origin, _):
        server = OAuthLive(origin, var, env)
        yield server
    spec = yaml.safe_load((ROOT / "spec" / "oauth.yaml").read_text())
    mismatches = check(spec, server.seen, prefix="")
    assert not mismatches, "\n".join(mismatches)
    assert server.seen  # the check saw answers (a subset check: what ran is checked)


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, page.text
    return found[1]


def authorize(
    live: OAuthLive,
    client_id: str,
    username: str,
    password: str = PASSWORD,
    scope: str = "read:pets read:user",
    verifier: str | None = None,
) -> tuple[OAuth2Client, str, str, httpx.Response]:
    """Through login and consent: (client, verifier, state, the final redirect)."""
    client = live.oauth_client(
        client_id, redirect_uri=REDIRECT, scope=scope, code_challenge_method="S256"
    )
    verifier = verifier or generate_token(48)
    uri, state = client.create_authorization_url(
        f"{live.origin}/oauth/authorize", code_verifier=verifier
    )
    with live.http() as browser:
        page = browser.get(uri)
        assert page.status_code == 200, page.text
        assert 'id="login"' in page.text, page.text
        page = browser.post(
            uri, data={"csrf_token": csrf(page), "username": username, "password": password}
        )
        assert page.status_code == 200, page.text
        assert 'id="consent"' in page.text, page.text
        done = browser.post(uri, data={"csrf_token": csrf(page), "decision": "allow"})
    return client, verifier, state, done


def tokens_for(live: OAuthLive, client_id: str, username: str, **kw: Any) -> dict[str, Any]:
    client, verifier, _, done = authorize(live, client_id, username, **kw)
    assert done.status_code == 302, done.text
    token: dict[str, Any] = client.fetch_token(
        f"{live.origin}/oauth/token",
        authorization_response=done.headers["location"],
        code_verifier=verifier,
    )
    return token


def code_of(redirect: httpx.Response) -> str:
    return parse_qs(urlsplit(redirect.headers["location"]).query)["code"][0]


def token_error(live: OAuthLive, **form: str) -> tuple[int, dict[str, Any]]:
    with live.http() as c:
        r = c.post(f"{live.origin}/oauth/token", data=form)
    return r.status_code, r.json()


def assert_ended(live: OAuthLive, client_id: str, token: dict[str, Any]) -> None:
    """The token set no longer works: the API refuses its access token, and its refresh token
    is ``invalid_grant``."""
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    assert httpx.get(f"{live.api.base}/pets", headers=bearer).status_code == 401
    status, body = token_error(
        live, grant_type="refresh_token", refresh_token=token["refresh_token"],
        client_id=client_id,
    )  # fmt: skip
    assert (status, body["error"]) == (400, "invalid_grant")


# -- metadata and registration ---------------------------------------------------------------


def test_metadata_advertises_every_endpoint(live_oauth: OAuthLive) -> None:
    with live_oauth.http() as c:
        r = c.get(f"{live_oauth.origin}/.well-known/oauth-authorization-server")
    assert r.status_code == 200
    meta = r.json()
    issuer = Settings.from_env(live_oauth.env).jwt_issuer  # the tokens' iss, from the same env
    assert issuer == "http://127.0.0.1:8080"  # no PETSTORE_PUBLIC_URL: the default
    assert meta["issuer"] == issuer
    assert meta["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    base = live_oauth.origin
    assert meta["authorization_endpoint"] == f"{base}/oauth/authorize"
    assert meta["token_endpoint"] == f"{base}/oauth/token"
    assert meta["device_authorization_endpoint"] == f"{base}/oauth/device/authorize"
    assert meta["registration_endpoint"] == f"{base}/oauth/register"
    assert meta["revocation_endpoint"] == f"{base}/oauth/revoke"
    assert meta["introspection_endpoint"] == f"{base}/oauth/introspect"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["response_types_supported"] == ["code"]
    assert set(meta["grant_types_supported"]) == {"authorization_code", "refresh_token", DEVICE}
    assert "none" in meta["token_endpoint_auth_methods_supported"]
    assert "chat:write" in meta["scopes_supported"]
    assert "admin" not in meta["scopes_supported"]


def test_registration_needs_an_admin_token(live_oauth: OAuthLive) -> None:
    anonymous = live_oauth.register(None)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "invalid_token"
    assert "Bearer" in anonymous.headers["www-authenticate"]
    user = live_oauth.register(live_oauth.api.token)
    assert user.status_code == 403
    assert user.json()["error"] == "insufficient_scope"
    bogus = live_oauth.register("not-a-token")
    assert bogus.status_code == 401
    assert bogus.json()["error"] == "invalid_token"


def test_registration_answers_rfc7591(live_oauth: OAuthLive) -> None:
    public = live_oauth.register(live_oauth.api.admin)
    assert public.status_code == 201
    assert "client_secret" not in public.json()
    assert public.json()["token_endpoint_auth_method"] == "none"
    confidential = live_oauth.register(
        live_oauth.api.admin, token_endpoint_auth_method="client_secret_basic"
    )
    assert confidential.status_code == 201
    assert confidential.json()["client_secret"]
    bad_uri = live_oauth.register(live_oauth.api.admin, redirect_uris=["http://evil.example/cb"])
    assert bad_uri.status_code == 400
    assert bad_uri.json()["error"] == "invalid_redirect_uri"
    bad_scope = live_oauth.register(live_oauth.api.admin, scope="read:pets admin")
    assert bad_scope.status_code == 400
    assert bad_scope.json()["error"] == "invalid_client_metadata"


# -- authorization code + PKCE -----------------------------------------------------------------


def test_code_flow_with_pkce_and_the_token_works_within_its_scopes(live_oauth: OAuthLive) -> None:
    client_id = live_oauth.client_id(client_name="Pet <b>Viewer</b>")
    username, user_id = live_oauth.user()
    client, verifier, state, done = authorize(live_oauth, client_id, username)
    assert done.status_code == 302
    location = urlsplit(done.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    assert parse_qs(location.query)["state"] == [state]  # untouched
    token = client.fetch_token(
        f"{live_oauth.origin}/oauth/token",
        authorization_response=done.headers["location"],
        code_verifier=verifier,
    )
    assert token["token_type"].lower() == "bearer"
    assert token["scope"] == "read:pets read:user"
    assert token["refresh_token"]
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    api = live_oauth.api.base
    assert httpx.get(f"{api}/pets", headers=bearer).status_code == 200
    assert httpx.get(f"{api}/users/{user_id}", headers=bearer).status_code == 200
    outside = httpx.put(
        f"{api}/users/{user_id}",
        headers=bearer,
        json={"username": username, "email": f"{username}@example.com",
              "firstName": "X", "lastName": "Y"},
    )  # fmt: skip
    assert outside.status_code == 403  # write:user was not granted to this token


def test_consent_page_escapes_and_names_the_scopes(live_oauth: OAuthLive) -> None:
    client_id = live_oauth.client_id(client_name="<script>alert(1)</script> App")
    client = live_oauth.oauth_client(
        client_id, redirect_uri=REDIRECT, scope="read:pets write:user", code_challenge_method="S256"
    )
    uri, _ = client.create_authorization_url(
        f"{live_oauth.origin}/oauth/authorize", code_verifier=generate_token(48)
    )
    with live_oauth.http() as browser:
        page = browser.get(uri)
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; App" in page.text
    assert "See the pets in the catalogue" in page.text
    assert "Change or delete your account" in page.text


def test_wrong_redirect_uri_or_unknown_client_is_an_error_page(live_oauth: OAuthLive) -> None:
    client_id = live_oauth.client_id()
    challenge = create_s256_code_challenge(generate_token(48))
    base = f"{live_oauth.origin}/oauth/authorize"
    common = {"response_type": "code", "code_challenge": challenge,
              "code_challenge_method": "S256", "state": "s1"}  # fmt: skip
    with live_oauth.http() as browser:
        wrong = browser.get(base, params={**common, "client_id": client_id,
                                          "redirect_uri": REDIRECT + "/other"})  # fmt: skip
        unknown = browser.get(base, params={**common, "client_id": "nope",
                                            "redirect_uri": REDIRECT})  # fmt: skip
    for page in (wrong, unknown):
        assert page.status_code == 400
        assert "location" not in page.headers
        assert page.headers["content-type"].startswith("text/html")


def test_public_client_must_use_s256_at_authorize(live_oauth: OAuthLive) -> None:
    client_id = live_oauth.client_id()
    base = f"{live_oauth.origin}/oauth/authorize"
    common = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT,
              "state": "keep-me"}  # fmt: skip
    with live_oauth.http() as browser:
        missing = browser.get(base, params=common)
        plain = browser.get(base, params={**common, "code_challenge": "a" * 43,
                                          "code_challenge_method": "plain"})  # fmt: skip
    for refused in (missing, plain):
        assert refused.status_code == 302
        query = parse_qs(urlsplit(refused.headers["location"]).query)
        assert query["error"] == ["invalid_request"]
        assert query["state"] == ["keep-me"]


def test_code_is_single_use_and_its_tokens_end(live_oauth: OAuthLive) -> None:
    client_id = live_oauth.client_id()
    username, _ = live_oauth.user()
    _client, verifier, _, done = authorize(live_oauth, client_id, username)
    code = code_of(done)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "client_id": client_id, "code_verifier": verifier}  # fmt: skip
    with live_oauth.http() as c:
        first = c.post(f"{live_oauth.origin}/oauth/token", data=form)
    assert first.status_code == 200
    status, body = token_error(live_oauth, **form)
    assert (status, body["error"]) == (400, "invalid_grant")
    # RFC 6749 §4.1.2: what the code gave is revoked
    bearer = {"Authorization": f"Bearer {first.json()['access_token']}"}
    assert httpx.get(f"{live_oauth.api.base}/pets", headers=bearer).status_code == 401
    status, body = token_error(
        live_oauth, grant_type="refresh_token", refresh_token=first.json()["refresh_token"],
        client_id=client_id,
    )  # fmt: skip
    assert (status, body["error"]) == (400, "invalid_grant")


def test_pkce_mismatch_and_missing_verifier(live_oauth: OAuthLive) -> None:
    client_id = live_oauth.client_id()
    username, _ = live_oauth.user()
    _, verifier, _, done = authorize(live_oauth, client_id, username)
    code = code_of(done)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "client_id": client_id}  # fmt: skip
    status, body = token_error(live_oauth, **form, code_verifier=generate_token(48))
    assert (status, body["error"]) == (400, "invalid_grant")
    status, body = token_error(live_oauth, **form)
    assert (status, body["error"]) == (400, "invalid_request")
    status, _ = token_error(live_oauth, **form, code_verifier=verifier)
    assert status == 200  # the failed attempts did not use the code up


def test_expired_code(live_oauth: OAuthLive) -> None:
    client_id = live_oauth.client_id()
    username, _ = live_oauth.user()
    _, verifier, _, done = authorize(live_oauth, client_id, username)
    code = code_of(done)
    past = datetime.now(UTC) - timedelta(seconds=1)
    live_oauth.sql(
        "UPDATE oauth_codes SET expires_at = :t WHERE code_hash = :h",
        t=self_time(live_oauth, past), h=digest(code),
    )  # fmt: skip
    status, body = token_error(
        live_oauth, grant_type="authorization_code", code=code, redirect_uri=REDIRECT,
        client_id=client_id, code_verifier=verifier,
    )  # fmt: skip
    assert (status, body["error"]) == (400, "invalid_grant")


def test_token_endpoint_unknown_client_and_wrong_redirect(live_oauth: OAuthLive) -> None:
    client_id = live_oauth.client_id()
    username, _ = live_oauth.user()
    _, verifier, _, done = authorize(live_oauth, client_id, username)
    code = code_of(done)
    status, body = token_error(
        live_oauth, grant_type="authorization_code", code=code, redirect_uri=REDIRECT,
        client_id="unknown-client", code_verifier=verifier,
    )  # fmt: skip
    assert status in (400, 401)
    assert body["error"] == "invalid_client"
    status, body = token_error(
        live_oauth, grant_type="authorization_code", code=code,
        redirect_uri="http://127.0.0.1:9/elsewhere", client_id=client_id, code_verifier=verifier,
    )  # fmt: skip
    assert (status, body["error"]) == (400, "invalid_grant")


def test_deny_redirects_access_denied(live_oauth: OAuthLive) -> None:
    client_id = live_oauth.client_id()
    username, _ = live_oauth.user()
    client = live_oauth.oauth_client(
        client_id, redirect_uri=REDIRECT, scope="read:pets", code_challenge_method="S256"
    )
    uri, state = client.create_authorization_url(
        f"{live_oauth.origin}/oauth/authorize", code_verifier=generate_token(48)
    )
    with live_oauth.http() as browser:
        page = browser.get(uri)
        page = browser.post(
            uri, data={"csrf_token": csrf(page), "username": username, "password": PASSWORD}
        )
        done = browser.post(uri, data={"csrf_token": csrf(page), "decision": "deny"})
    query = parse_qs(urlsplit(done.headers["location"]).query)
    assert done.status_code == 302
    assert query["error"] == ["access_denied"]
    assert query["state"] == [state]


def test_csrf_is_checked_on_login_and_consent(live_oauth: OAuthLive) -> None:
    client_id = live_oauth.client_id()
    username, _ = live_oauth.user()
    client = live_oauth.oauth_client(
        client_id, redirect_uri=REDIRECT, scope="read:pets", code_challenge_method="S256"
    )
    uri, _ = client.create_authorization_url(
        f"{live_oauth.origin}/oauth/authorize", code_verifier=generate_token(48)
    )
    with live_oauth.http() as browser:
        page = browser.get(uri)
        token = csrf(page)
        missing = browser.post(uri, data={"username": username, "password": PASSWORD})
        wrong = browser.post(
            uri, data={"csrf_token": "x" + token, "username": username, "password": PASSWORD}
        )
        assert missing.status_code == wrong.status_code == 400
        assert 'id="consent"' not in missing.text + wrong.text
        page = browser.post(
            uri, data={"csrf_token": token, "username": username, "password": PASSWORD}
        )
        assert 'id="consent"' in page.text
        forged = browser.post(uri, data={"decision": "allow"})
        assert forged.status_code == 400
        assert "location" not in forged.headers


def test_wrong_password_and_suspended_user_cannot_authorize(live_oauth: OAuthLive) -> None:
    client_id = live_oauth.client_id()
    username, user_id = live_oauth.user()
    client = live_oauth.oauth_client(
        client_id, redirect_uri=REDIRECT, scope="read:pets", code_challenge_method="S256"
    )
    uri, _ = client.create_authorization_url(
        f"{live_oauth.origin}/oauth/authorize", code_verifier=generate_token(48)
    )
    admin = {"Authorization": f"Bearer {live_oauth.api.admin}"}
    with live_oauth.http() as browser:
        page = browser.get(uri)
        bad = browser.post(
            uri, data={"csrf_token": csrf(page), "username": username, "password": "wrong-pass-1"}
        )
        assert bad.status_code == 401
        assert 'id="consent"' not in bad.text
        page = browser.post(
            uri, data={"csrf_token": csrf(bad), "username": username, "password": PASSWORD}
        )
        assert 'id="consent"' in page.text
        suspended = httpx.patch(
            f"{live_oauth.api.base}/admin/users/{user_id}/status",
            json={"status": "SUSPENDED", "reason": "test"}, headers=admin,
        )  # fmt: skip
        assert suspended.status_code == 200, suspended.text
        allow = browser.post(uri, data={"csrf_token": csrf(page), "decision": "allow"})
        assert "location" not in allow.headers  # no code for a suspended account
        again = browser.post(
            uri, data={"csrf_token": csrf(allow), "username": username, "password": PASSWORD}
        )
        assert again.status_code == 403
        assert 'id="consent"' not in again.text


# -- refresh tokens ------------------------------------------------------------------------------


def test_refresh_rotates_and_reuse_revokes_the_family(live_oauth: OAuthLive) -> None:
    client_id = live_oauth.client_id()
    username, _ = live_oauth.user()
    first = tokens_for(live_oauth, client_id, username)
    client = live_oauth.oauth_client(client_id)
    url = f"{live_oauth.origin}/oauth/token"
    second = client.refresh_token(url, refresh_token=first["refresh_token"])
    assert second["refresh_token"] != first["refresh_token"]
    assert second["scope"] == "read:pets read:user"
    # the old one again: reuse, the whole family ends (the rotated successor too)
    status, body = token_error(
        live_oauth, grant_type="refresh_token", refresh_token=first["refresh_token"],
        client_id=client_id,
    )  # fmt: skip
    assert (status, body["error"]) == (400, "invalid_grant")
    status, body = token_error(
        live_oauth, grant_type="refresh_token", refresh_token=second["refresh_token"],
        client_id=client_id,
    )  # fmt: skip
    assert (status, body["error"]) == (400, "invalid_grant")
    bearer = {"Authorization": f"Bearer {second['access_token']}"}
    assert httpx.get(f"{live_oauth.api.base}/pets", headers=bearer).status_code == 401


def test_refresh_cannot_escalate_scope(live_oauth: OAuthLive) -> None:
    client_id = live_oauth.client_id()
    username, _ = live_oauth.user()
    first = tokens_for(live_oauth, client_id, username, scope="read:pets")
    status, body = token_error(
        live_oauth, grant_type="refresh_token", refresh_token=first["refresh_token"],
        client_id=client_id, scope="read:pets write:user",
    )  # fmt: skip
    assert (status, body["error"]) == (400, "invalid_scope")
    narrower = live_oauth.oauth_client(client_id).refresh_token(
        f"{live_oauth.origin}/oauth/token", refresh_token=first["refresh_token"]
    )
    assert narrower["scope"] == "read:pets"


def test_password_change_ends_refresh_families(live_oauth: OAuthLive) -> None:
    client_id = live_oauth.client_id()
    username, user_id = live_oauth.user()
    first = tokens_for(live_oauth, client_id, username)
    login = live_oauth.api.login(username, PASSWORD)
    changed = httpx.put(
        f"{live_oauth.api.base}/users/{user_id}/password",
        json={"currentPassword": PASSWORD, "newPassword": "another-pass-456"},
        headers={"Authorization": f"Bearer {login}"},
    )
    assert changed.status_code in (200, 204), changed.text
    status, body = token_error(
        live_oauth, grant_type="refresh_token", refresh_token=first["refresh_token"],
        client_id=client_id,
    )  # fmt: skip
    assert (status, body["error"]) == (400, "invalid_grant")


def test_authlib_client_raises_on_reuse(live_oauth: OAuthLive) -> None:
    client_id = live_oauth.client_id()
    username, _ = live_oauth.user()
    first = tokens_for(live_oauth, client_id, username)
    client = live_oauth.oauth_client(client_id)
    url = f"{live_oauth.origin}/oauth/token"
    client.refresh_token(url, refresh_token=first["refresh_token"])
    with pytest.raises(OAuthError) as refused:
        client.refresh_token(url, refresh_token=first["refresh_token"])
    assert refused.value.error == "invalid_grant"


def test_confidential_client_authenticates(live_oauth: OAuthLive) -> None:
    r = live_oauth.register(live_oauth.api.admin, token_endpoint_auth_method="client_secret_basic")
    client_id, secret = r.json()["client_id"], r.json()["client_secret"]
    username, _ = live_oauth.user()
    _client, verifier, _, done = authorize(live_oauth, client_id, username)
    form = {"grant_type": "authorization_code", "code": code_of(done), "redirect_uri": REDIRECT,
            "code_verifier": verifier}  # fmt: skip
    with live_oauth.http() as c:
        wrong = c.post(f"{live_oauth.origin}/oauth/token", data=form, auth=(client_id, "nope"))
        assert wrong.status_code == 401
        assert wrong.json()["error"] == "invalid_client"
        right = c.post(f"{live_oauth.origin}/oauth/token", data=form, auth=(client_id, secret))
    assert right.status_code == 200, right.text


def test_cli_creates_clients(live_oauth: OAuthLive) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 (our own CLI, fixed arguments)
            [sys.executable, "manage.py", "create-client", *args],
            cwd=ROOT, env=live_oauth.env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    public = cli("--name", "CLI App", "--redirect-uri", REDIRECT, "--public",
                 "--scope", "read:pets read:user", "--grant-type", "authorization_code",
                 "--grant-type", "refresh_token")  # fmt: skip
    assert public.returncode == 0, public.stderr
    assert "client_secret" not in public.stdout
    client_id = re.search(r"client_id: (\S+)", public.stdout)[1]  # type: ignore[index]
    username, _ = live_oauth.user()
    token = tokens_for(live_oauth, client_id, username)
    assert token["scope"] == "read:pets read:user"
    confidential = cli("--name", "CLI Backend", "--redirect-uri", REDIRECT, "--confidential",
                       "--scope", "read:pets")  # fmt: skip
    assert confidential.returncode == 0, confidential.stderr
    assert re.search(r"client_secret: \S+", confidential.stdout)
    bad = cli("--name", "Bad", "--redirect-uri", "http://evil.example/cb", "--scope", "read:pets")
    assert bad.returncode != 0
    assert "redirect" in bad.stderr


# -- device authorization grant (RFC 8628) ---------------------------------------------------


def start_device(live: OAuthLive, client_id: str, scope: str = "read:pets") -> dict[str, Any]:
    with live.http() as c:
        r = c.post(f"{live.origin}/oauth/device/authorize", data={"client_id": client_id,
                                                                  "scope": scope})  # fmt: skip
    assert r.status_code == 200, r.text
    started: dict[str, Any] = r.json()
    return started


def poll(live: OAuthLive, client_id: str, device_code: str) -> httpx.Response:
    with live.http() as c:
        return c.post(
            f"{live.origin}/oauth/token",
            data={"grant_type": DEVICE, "device_code": device_code, "client_id": client_id},
        )


def ready_to_poll(live: OAuthLive, device_code: str) -> None:
    """As if the interval had passed since the last poll (no sleeping in tests)."""
    live.sql(
        "UPDATE oauth_device_codes SET last_poll_at = NULL WHERE device_code_hash = :h",
        h=digest(device_code),
    )


def answer_on_page(
    live: OAuthLive, started: dict[str, Any], username: str, decision: str
) -> httpx.Response:
    with live.http() as browser:
        page = browser.get(started["verification_uri_complete"])
        assert page.status_code == 200
        assert started["user_code"] in page.text
        page = browser.post(
            started["verification_uri"],
            data={"csrf_token": csrf(page), "user_code": started["user_code"]},
        )
        assert 'id="username"' in page.text, page.text
        page = browser.post(
            started["verification_uri"],
            data={"csrf_token": csrf(page), "user_code": started["user_code"],
                  "username": username, "password": PASSWORD},
        )  # fmt: skip
        assert 'id="decide"' in page.text, page.text
        return browser.post(
            started["verification_uri"],
            data={"csrf_token": csrf(page), "user_code": started["user_code"],
                  "decision": decision},
        )  # fmt: skip


def test_device_flow_end_to_end(live_oauth: OAuthLive) -> None:
    client_id = live_oauth.client_id()
    username, _ = live_oauth.user()
    started = start_device(live_oauth, client_id)
    assert re.fullmatch(
        r"[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}", started["user_code"]
    )
    assert started["verification_uri"] == f"{live_oauth.origin}/oauth/device"
    assert started["interval"] == 5
    assert started["expires_in"] == 600
    pending = poll(live_oauth, client_id, started["device_code"])
    assert (pending.status_code, pending.json()["error"]) == (400, "authorization_pending")
    fast = poll(live_oauth, client_id, started["device_code"])
    assert (fast.status_code, fast.json()["error"]) == (400, "slow_down")
    done = answer_on_page(live_oauth, started, username, "approve")
    assert done.status_code == 200
    assert 'id="done"' in done.text
    ready_to_poll(live_oauth, started["device_code"])
    client = live_oauth.oauth_client(client_id)
    token = client.fetch_token(
        f"{live_oauth.origin}/oauth/token", grant_type=DEVICE,
        device_code=started["device_code"],
    )  # fmt: skip
    assert token["scope"] == "read:pets"
    assert token["refresh_token"]
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    assert httpx.get(f"{live_oauth.api.base}/pets", headers=bearer).status_code == 200
    ready_to_poll(live_oauth, started["device_code"])
    again = poll(live_oauth, client_id, started["device_code"])  # tokens only once
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")


def test_slow_down_grows_the_interval(live_oauth: OAuthLive) -> None:
    client_id = live_oauth.client_id()
    started = start_device(live_oauth, client_id)
    poll(live_oauth, client_id, started["device_code"])
    poll(live_oauth, client_id, started["device_code"])
    with live_oauth.db.begin() as conn:
        interval = conn.execute(
            text("SELECT interval FROM oauth_device_codes WHERE device_code_hash = :h"),
            {"h": digest(started["device_code"])},
        ).scalar()
    assert interval == 10


def test_device_denied_and_expired(live_oauth: OAuthLive) -> None:
    client_id = live_oauth.client_id()
    username, _ = live_oauth.user()
    denied = start_device(live_oauth, client_id)
    page = answer_on_page(live_oauth, denied, username, "deny")
    assert page.status_code == 200
    r = poll(live_oauth, client_id, denied["device_code"])
    assert (r.status_code, r.json()["error"]) == (400, "access_denied")
    expired = start_device(live_oauth, client_id)
    live_oauth.sql(
        "UPDATE oauth_device_codes SET expires_at = :t WHERE device_code_hash = :h",
        t=self_time(live_oauth, datetime.now(UTC) - timedelta(seconds=1)),
        h=digest(expired["device_code"]),
    )
    r = poll(live_oauth, client_id, expired["device_code"])
    assert (r.status_code, r.json()["error"]) == (400, "expired_token")
    other = live_oauth.client_id()
    mine = start_device(live_oauth, client_id)
    r = poll(live_oauth, other, mine["device_code"])  # another client's device code
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")


def test_device_page_checks_csrf_and_codes(live_oauth: OAuthLive) -> None:
    client_id = live_oauth.client_id()
    username, _ = live_oauth.user()
    started = start_device(live_oauth, client_id)
    url = started["verification_uri"]
    with live_oauth.http() as browser:
        page = browser.get(url)
        token = csrf(page)
        missing = browser.post(url, data={"user_code": started["user_code"],
                                          "username": username, "password": PASSWORD})  # fmt: skip
        assert missing.status_code == 400
        assert 'id="decide"' not in missing.text
        unknown = browser.post(url, data={"csrf_token": token, "user_code": "BBBB-BBBB"})
        assert unknown.status_code == 400
        typed = started["user_code"].lower().replace("-", "")  # typed loosely
        page = browser.post(url, data={"csrf_token": token, "user_code": typed,
                                       "username": username, "password": PASSWORD})  # fmt: skip
        assert 'id="decide"' in page.text
        forged = browser.post(url, data={"user_code": started["user_code"], "decision": "approve"})
        assert forged.status_code == 400
    r = poll(live_oauth, client_id, started["device_code"])
    assert r.json()["error"] == "authorization_pending"  # nothing was approved


def test_client_without_the_device_grant_is_refused(live_oauth: OAuthLive) -> None:
    client_id = live_oauth.client_id(grant_types=["authorization_code"])
    with live_oauth.http() as c:
        r = c.post(f"{live_oauth.origin}/oauth/device/authorize", data={"client_id": client_id})
    assert (r.status_code, r.json()["error"]) == (400, "unauthorized_client")
    with live_oauth.http() as c:
        r = c.post(f"{live_oauth.origin}/oauth/device/authorize", data={"client_id": "nobody"})
    assert r.json()["error"] == "invalid_client"


# -- revocation (RFC 7009) and introspection (RFC 7662) ----------------------------------------


def confidential(live: OAuthLive) -> tuple[str, str]:
    r = live.register(live.api.admin, token_endpoint_auth_method="client_secret_basic")
    assert r.status_code == 201, r.text
    return r.json()["client_id"], r.json()["client_secret"]


def introspect(live: OAuthLive, auth: tuple[str, str], token: str) -> dict[str, Any]:
    with live.http() as c:
        r = c.post(f"{live.origin}/oauth/introspect", data={"token": token}, auth=auth)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_revoking_a_refresh_token_ends_its_family(live_oauth: OAuthLive) -> None:
    client_id = live_oauth.client_id()
    username, _ = live_oauth.user()
    token = tokens_for(live_oauth, client_id, username)
    auth = confidential(live_oauth)
    assert introspect(live_oauth, auth, token["refresh_token"])["active"] is True
    with live_oauth.http() as c:  # a wrong hint must not stop the search (RFC 7009 §2.1)
        r = c.post(f"{live_oauth.origin}/oauth/revoke",
                   data={"token": token["refresh_token"], "client_id": client_id,
                         "token_type_hint": "access_token"})  # fmt: skip
    assert r.status_code == 200
    assert introspect(live_oauth, auth, token["refresh_token"]) == {"active": False}
    assert_ended(live_oauth, client_id, token)


def test_revoking_an_access_token_makes_the_api_refuse_it(live_oauth: OAuthLive) -> None:
    client_id = live_oauth.client_id()
    username, _ = live_oauth.user()
    token = tokens_for(live_oauth, client_id, username)
    auth = confidential(live_oauth)
    seen = introspect(live_oauth, auth, token["access_token"])
    assert seen["active"] is True
    assert seen["client_id"] == client_id
    assert seen["scope"] == "read:pets read:user"
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    assert httpx.get(f"{live_oauth.api.base}/pets", headers=bearer).status_code == 200
    with live_oauth.http() as c:
        other = c.post(f"{live_oauth.origin}/oauth/revoke",
                       data={"token": token["access_token"]}, auth=auth)  # fmt: skip
        assert other.status_code == 200  # another client's token: ignored (RFC 7009 §2.2)
        assert httpx.get(f"{live_oauth.api.base}/pets", headers=bearer).status_code == 200
        r = c.post(f"{live_oauth.origin}/oauth/revoke",
                   data={"token": token["access_token"], "client_id": client_id,
                         "token_type_hint": "access_token"})  # fmt: skip
    assert r.status_code == 200
    assert httpx.get(f"{live_oauth.api.base}/pets", headers=bearer).status_code == 401
    assert introspect(live_oauth, auth, token["access_token"]) == {"active": False}
    # the refresh token of the same grant still works (only the access token was revoked)
    again = live_oauth.oauth_client(client_id).refresh_token(
        f"{live_oauth.origin}/oauth/token", refresh_token=token["refresh_token"]
    )
    assert again["access_token"]


def test_introspection_needs_a_confidential_client(live_oauth: OAuthLive) -> None:
    client_id = live_oauth.client_id()
    with live_oauth.http() as c:
        public = c.post(f"{live_oauth.origin}/oauth/introspect",
                        data={"token": "x", "client_id": client_id})  # fmt: skip
        wrong = c.post(f"{live_oauth.origin}/oauth/introspect", data={"token": "x"},
                       auth=(confidential(live_oauth)[0], "wrong"))  # fmt: skip
    assert public.status_code in (400, 401)
    assert public.json()["error"] == "invalid_client"
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    auth = confidential(live_oauth)
    assert introspect(live_oauth, auth, "garbage") == {"active": False}
    assert introspect(live_oauth, auth, live_oauth.api.token)["active"] is True  # a login token


def test_changes_are_audited(live_oauth: OAuthLive) -> None:
    client_id = live_oauth.client_id()
    username, user_id = live_oauth.user()
    first = tokens_for(live_oauth, client_id, username)
    client = live_oauth.oauth_client(client_id)
    client.refresh_token(f"{live_oauth.origin}/oauth/token", refresh_token=first["refresh_token"])
    token_error(live_oauth, grant_type="refresh_token", refresh_token=first["refresh_token"],
                client_id=client_id)  # fmt: skip
    with live_oauth.db.begin() as conn:
        rows = conn.execute(
            text(
                "SELECT action, entity_id, after FROM audit_logs "
                "WHERE entity_id = :id OR CAST(after AS TEXT) LIKE :c"
            ),
            {"id": client_id, "c": f"%{client_id}%"},
        ).all()
    actions = [row[0] for row in rows]
    assert actions.count("OAUTH_CLIENT_REGISTERED") == 1
    assert actions.count("TOKEN_ISSUED") == 2  # the code's tokens and the rotation's
    assert actions.count("OAUTH_REFRESH_FAMILY_REVOKED") == 1
    issued = [row for row in rows if row[0] == "TOKEN_ISSUED"]
    assert all(user_id in str(row[2]) for row in issued)
    assert all(first["refresh_token"] not in str(row[2]) for row in rows)  # no secret stored


def test_token_requests_and_registrations_are_budgeted(tmp_path: Path) -> None:
    env = server_env(
        tmp_path,
        PETSTORE_OAUTH_RATE_LIMIT="2",
        PETSTORE_REGISTER_RATE_LIMIT="1",
        **database_env(),
    )
    with uvicorn_process("app:app_from_env", env, tmp_path / "server.log") as (origin, _):
        answers = [
            httpx.post(f"{origin}/oauth/token", data={"grant_type": "refresh_token"})
            for _ in range(3)
        ]
        assert [a.status_code for a in answers] == [401, 401, 429]  # no client: invalid_client
        assert answers[2].json()["error"] == "too_many_requests"
        assert int(answers[2].headers["retry-after"]) > 0
        registrations = [httpx.post(f"{origin}/oauth/register", json={}) for _ in range(2)]
        assert [r.status_code for r in registrations] == [401, 429]
        # the metadata is not a budgeted action (only the general budget, off here)
        assert httpx.get(f"{origin}/.well-known/oauth-authorization-server").status_code == 200


def test_oversized_form_is_413_problem(live_oauth: OAuthLive) -> None:
    with live_oauth.http() as c:
        r = c.post(f"{live_oauth.origin}/oauth/token", data={"grant_type": "x" * 70_000})
    assert r.status_code == 413
    assert r.headers["content-type"].startswith("application/problem+json")


# -- races and slow clients ------------------------------------------------------------------


def at_once(live: OAuthLive, *posts: tuple[str, dict[str, str]]) -> list[httpx.Response]:
    """POST the forms (path, form) together (released by one barrier), answers in order."""
    barrier = threading.Barrier(len(posts))

    def go(post: tuple[str, dict[str, str]]) -> httpx.Response:
        with live.http() as c:
            barrier.wait()
            return c.post(live.origin + post[0], data=post[1])

    with ThreadPoolExecutor(len(posts)) as pool:
        return list(pool.map(go, posts))


def test_concurrent_polls_hand_the_device_tokens_out_once(live_oauth: OAuthLive) -> None:
    client_id = live_oauth.client_id()
    username, _ = live_oauth.user()
    for _ in range(3):
        started = start_device(live_oauth, client_id)
        assert answer_on_page(live_oauth, started, username, "approve").status_code == 200
        ready_to_poll(live_oauth, started["device_code"])
        form = {"grant_type": DEVICE, "device_code": started["device_code"],
                "client_id": client_id}  # fmt: skip
        answers = at_once(live_oauth, *[("/oauth/token", form)] * 6)
        granted = [a for a in answers if a.status_code == 200]
        assert len(granted) == 1, [a.text for a in answers]
        for refused in answers:
            if refused.status_code != 200:
                assert refused.json()["error"] in ("slow_down", "invalid_grant"), refused.text


def test_a_revocation_racing_a_rotation_leaves_no_live_token(live_oauth: OAuthLive) -> None:
    client_id = live_oauth.client_id()
    username, _ = live_oauth.user()
    auth = confidential(live_oauth)
    for _ in range(4):
        token = tokens_for(live_oauth, client_id, username)
        rotated, revoked = at_once(
            live_oauth,
            ("/oauth/token", {"client_id": client_id, "grant_type": "refresh_token",
                              "refresh_token": token["refresh_token"]}),
            ("/oauth/revoke", {"client_id": client_id, "token": token["refresh_token"]}),
        )  # fmt: skip
        assert revoked.status_code == 200
        assert rotated.status_code in (200, 400), rotated.text
        if rotated.status_code == 200:  # rotated first: the revocation ended the successor too
            successor = rotated.json()
            assert introspect(live_oauth, auth, successor["refresh_token"]) == {"active": False}
            bearer = {"Authorization": f"Bearer {successor['access_token']}"}
            assert httpx.get(f"{live_oauth.api.base}/pets", headers=bearer).status_code == 401
        else:
            assert rotated.json()["error"] == "invalid_grant"
        assert introspect(live_oauth, auth, token["refresh_token"]) == {"active": False}


def test_a_code_redeemed_twice_at_once_ends_the_tokens_it_gave(live_oauth: OAuthLive) -> None:
    client_id = live_oauth.client_id()
    username, _ = live_oauth.user()
    for _ in range(3):
        _client, verifier, _, done = authorize(live_oauth, client_id, username)
        form = {"grant_type": "authorization_code", "code": code_of(done),
                "redirect_uri": REDIRECT, "client_id": client_id,
                "code_verifier": verifier}  # fmt: skip
        answers = at_once(live_oauth, *[("/oauth/token", form)] * 2)
        assert sorted(a.status_code for a in answers) == [200, 400], [a.text for a in answers]
        loser = next(a for a in answers if a.status_code == 400)
        assert loser.json()["error"] == "invalid_grant"
        assert_ended(live_oauth, client_id, next(a for a in answers if a.status_code == 200).json())


def test_slow_bodies_hold_no_thread_and_end_in_408(live_oauth: OAuthLive) -> None:
    """More stalled uploads than the pages have threads: the others are still served at once,
    and each stalled one is answered 408 when its deadline passes."""
    address = urlsplit(live_oauth.origin)
    stalled = []
    for _ in range(OAUTH_THREADS + 2):
        sock = socket.create_connection((address.hostname, address.port), timeout=30)
        sock.sendall(
            b"POST /oauth/token HTTP/1.1\r\nHost: " + address.netloc.encode() + b"\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 200\r\n\r\n"
            b"grant_type="
        )
        stalled.append(sock)
    try:
        started = time.monotonic()
        with live_oauth.http() as c:
            meta = c.get(f"{live_oauth.origin}/.well-known/oauth-authorization-server", timeout=5)
        assert meta.status_code == 200
        assert time.monotonic() - started < BODY_DEADLINE_SECONDS  # not queued behind them
        answer = stalled[0].recv(4096)
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert b"application/problem+json" in answer
    finally:
        for sock in stalled:
            sock.close()
