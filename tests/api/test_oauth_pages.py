"""The OAuth pages' session through the real app: its cookie's attributes (Secure when the
public URL is https), the 30-minute lifetime of a sign-in, sign-out, and a changed password
ending the session. The cookie is Flask's signed one; to age it, the test re-signs the very
session the app issued with an older timestamp, using the key the app derives."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from starlette.testclient import TestClient

from app import create_app
from protocols.oauth.pages import SESSION_LIFETIME
from settings import Settings
from tests.conftest import PASSWORD, Api

REDIRECT = "http://127.0.0.1:9/callback"
COOKIE = "petstore_oauth"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf(page: Any) -> str:
    found = CSRF.search(page.text)
    assert found, page.text
    return found[1]


def authorize_url(api: Api) -> str:
    """A valid authorization request of a fresh public client in ``api``'s tenant."""
    r = api.client.post(
        "/oauth/register",
        headers=api.headers(api.admin_token()),
        json={"client_name": "Pages", "redirect_uris": [REDIRECT],
              "token_endpoint_auth_method": "none", "scope": "read:pets"},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    challenge = create_s256_code_challenge(generate_token(48))
    return (
        f"/oauth/authorize?response_type=code&client_id={r.json()['client_id']}"
        f"&redirect_uri={REDIRECT}&scope=read:pets&state=s&code_challenge={challenge}"
        "&code_challenge_method=S256"
    )


@contextlib.contextmanager
def browser_for(api: Api) -> Iterator[TestClient]:
    """A client with a cookie jar of its own on the session's app (its lifespan runs once, for
    the shared client: this one neither starts nor stops it)."""
    yield TestClient(api.client.app, base_url="http://localhost")  # Authlib: http on loopback


def sign_in(client: TestClient, url: str, username: str) -> Any:
    page = client.get(url)
    assert 'id="login"' in page.text
    page = client.post(
        url, data={"csrf_token": csrf(page), "username": username, "password": PASSWORD}
    )
    assert 'id="consent"' in page.text, page.text
    return page


class _Signer(TimestampSigner):
    age = 0

    def get_timestamp(self) -> int:
        return int(time.time()) - self.age


def resigned(settings: Settings, cookie: str, age_seconds: int) -> str:
    """The app's own session cookie signed again as if written ``age_seconds`` ago."""
    flask = Flask("aging")
    flask.secret_key = hashlib.sha256(
        b"petstore oauth pages v1" + settings.jwt_secret.encode()
    ).hexdigest()
    interface = SecureCookieSessionInterface()
    real = interface.get_signing_serializer(flask)
    assert real is not None
    data = real.loads(cookie)
    signer = type("Aged", (_Signer,), {"age": age_seconds})
    aged = URLSafeTimedSerializer(
        flask.secret_key,
        salt=interface.salt,
        serializer=interface.serializer,
        signer=signer,
        signer_kwargs={"key_derivation": interface.key_derivation,
                       "digest_method": interface.digest_method},
    )  # fmt: skip
    return str(aged.dumps(data))


def test_the_session_cookie_is_httponly_lax_and_ends_with_the_browser(api: Api) -> None:
    url = authorize_url(api)
    user = api.register()
    with browser_for(api) as browser:
        page = browser.get(url)
        assert 'id="login"' in page.text
        signed = browser.post(
            url, data={"csrf_token": csrf(page), "username": user["username"],
                       "password": PASSWORD},
        )  # fmt: skip
    header = signed.headers["set-cookie"]
    assert header.startswith(f"{COOKIE}=")
    attributes = {a.strip().split("=")[0].lower() for a in header.split(";")[1:]}
    assert {"httponly", "path"} <= attributes
    assert "samesite=lax" in header.lower()
    assert "path=/oauth" in header.lower()
    assert not attributes & {"expires", "max-age"}  # a browser-session cookie
    assert "secure" not in attributes  # served over plain http here


def test_the_cookie_is_secure_when_the_public_url_is_https(settings: Settings) -> None:
    https = dataclasses.replace(settings, public_url="https://pets.example")
    with create_app(https).test_client() as client:
        page = client.get("/oauth/authorize?client_id=nobody&response_type=code")
    assert page.status_code == 400
    attributes = {a.strip().lower() for a in page.headers["set-cookie"].split(";")[1:]}
    assert "secure" in attributes


def test_sign_out_ends_the_session_and_needs_the_csrf_token(api: Api) -> None:
    url = authorize_url(api)
    user = api.register()
    with browser_for(api) as browser:
        consent = sign_in(browser, url, user["username"])
        assert 'id="signout"' in consent.text
        forged = browser.post("/oauth/signout", data={})
        assert forged.status_code == 400
        assert 'id="consent"' in browser.get(url).text  # still signed in
        out = browser.post("/oauth/signout", data={"csrf_token": csrf(consent)})
        assert out.status_code == 200
        assert 'id="signed-out"' in out.text
        assert 'id="login"' in browser.get(url).text


def test_a_changed_password_ends_the_pages_session(api: Api) -> None:
    url = authorize_url(api)
    user = api.register()
    token = api.login(user["username"])
    with browser_for(api) as browser:
        sign_in(browser, url, user["username"])
        changed = api.request(
            "PUT", f"/users/{user['id']}/password", token,
            json={"currentPassword": PASSWORD, "newPassword": "a-new-password-77"},
        )  # fmt: skip
        assert changed.status_code in (200, 204), changed.text
        page = browser.get(url)
        assert 'id="login"' in page.text
        assert 'id="consent"' not in page.text


@pytest.mark.parametrize(
    ("age", "signed_in"),
    [(60, True), (int(SESSION_LIFETIME.total_seconds()) + 60, False)],
    ids=["a-minute-old", "past-the-lifetime"],
)
def test_a_sign_in_lasts_thirty_minutes(
    api: Api, settings: Settings, age: int, signed_in: bool
) -> None:
    url = authorize_url(api)
    user = api.register()
    with browser_for(api) as browser:
        sign_in(browser, url, user["username"])
        cookie = browser.cookies.get(COOKIE, path="/oauth")
        assert cookie
        browser.cookies.clear()
        browser.cookies.set(COOKIE, resigned(settings, cookie, age), path="/oauth")
        page = browser.get(url)
    assert ('id="consent"' in page.text) is signed_in
    assert ('id="login"' in page.text) is not signed_in
