"""Tokens through the real app: forged, foreign and expired tokens are refused alike; a short
signing key is refused at startup; changing the password and logging out end earlier tokens
(at once on the worker that made the change, within the role cache's lifetime elsewhere)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app import create_app
from auth.keys import SigningKey, key_ring, new_private_key
from models import RevokedToken
from models.base import utcnow
from models.database import Database
from services.accounts.users import purge_revoked_tokens, revoke_token
from services.shared.principal import Principal
from settings import ConfigError, Settings
from tests.conftest import PASSWORD, Api, run_db, server_signed

NEW_PASSWORD = "a-brand-new-secret-7"


def _claims(api: Api, user: dict[str, Any], settings: Settings, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": settings.jwt_issuer,
        "aud": "petstore-api",
        "sub": user["id"],
        "client_id": "petstore-api",
        "role": "user",
        "scope": "read:user write:user",
        "tid": api.tenant,
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        "ver": 0,
    }
    claims.update(changes)
    return claims


def _b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _assert_401(response: Any, instance: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["status"] == 401
    assert body["instance"] == instance


def _hmac_signed(claims: dict[str, Any], key: bytes, kid: str) -> str:
    """An HS256 token made by hand (PyJWT refuses a PEM as an HMAC key): the algorithm
    confusion attack signs with the server's *public* key as the HMAC secret."""
    head = f"{_b64({'alg': 'HS256', 'typ': 'at+jwt', 'kid': kid})}.{_b64(claims)}"
    signature = hmac.new(key, head.encode(), hashlib.sha256).digest()
    return f"{head}.{_b64(signature)}"


class TestRefusedTokens:
    @pytest.mark.filterwarnings("ignore:The HMAC key")
    def test_forged_foreign_and_expired_tokens_are_401_problems(
        self, api: Api, settings: Settings
    ) -> None:
        user = api.register()
        path = f"/users/{user['id']}"
        claims = _claims(api, user, settings)
        good = server_signed(settings, claims)
        assert api.request("GET", path, good).status_code == 200  # the baseline is accepted
        server_kid = jwt.get_unverified_header(good)["kid"]
        stranger = SigningKey.of(new_private_key())
        public_pem = (
            key_ring(settings)
            .signing_key()
            .public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        head, payload, signature = good.split(".")
        tampered = {**claims, "scope": "read:user write:user write:pets admin", "role": "admin"}
        tokens = {
            "alg none": f"{_b64({'alg': 'none', 'typ': 'at+jwt', 'kid': server_kid})}."
            f"{_b64(claims)}.",
            "tampered payload, original signature": f"{head}.{_b64(tampered)}.{signature}",
            "signature of another token": f"{head}.{payload}."
            + server_signed(settings, tampered).split(".")[2],
            "an unknown key with its own kid": jwt.encode(
                claims, stranger.private, algorithm="ES256",
                headers={"typ": "at+jwt", "kid": stranger.kid},
            ),
            "an unknown key claiming the server's kid": jwt.encode(
                claims, stranger.private, algorithm="ES256",
                headers={"typ": "at+jwt", "kid": server_kid},
            ),
            "HS256 with the server secret (the old tokens)": jwt.encode(
                claims, settings.jwt_secret, algorithm="HS256",
                headers={"typ": "at+jwt", "kid": server_kid},
            ),
            "HS256 keyed with the server's public key": _hmac_signed(
                claims, public_pem, server_kid
            ),
            "no kid": jwt.encode(
                claims, key_ring(settings).signing_key().private, algorithm="ES256",
                headers={"typ": "at+jwt"},
            ),
            "not typed at+jwt": server_signed(settings, claims, typ="JWT"),
            "wrong audience": server_signed(settings, _claims(api, user, settings, aud="other")),
            "wrong issuer": server_signed(
                settings, _claims(api, user, settings, iss="https://evil.example")
            ),
            "expired": server_signed(
                settings,
                _claims(api, user, settings, iat=int(time.time()) - 700, exp=int(time.time()) - 5),
            ),
        }  # fmt: skip
        for name, token in tokens.items():
            r = api.request("GET", path, token)
            assert r.status_code == 401, name
            _assert_401(r, f"/v1{path}")

    def test_a_short_server_secret_is_refused_at_startup(self, settings: Settings) -> None:
        """PETSTORE_JWT_SECRET no longer signs tokens but still keys sealed secrets."""
        with pytest.raises(ConfigError, match="PETSTORE_JWT_SECRET is 31 bytes long"):
            Settings.from_env(
                {"DATABASE_URL": settings.database_url, "PETSTORE_JWT_SECRET": "k" * 31}
            )
        with pytest.raises(ConfigError, match="at least 32"):
            settings.with_overrides(jwt_secret="é" * 15)  # 30 bytes in UTF-8
        assert Settings.from_env(
            {"DATABASE_URL": settings.database_url, "PETSTORE_JWT_SECRET": "k" * 32}
        ).jwt_secret == "k" * 32  # fmt: skip


class TestChangePassword:
    def test_needs_the_current_password_and_ends_earlier_tokens_at_once(self, api: Api) -> None:
        user, token = api.user_token()
        other = api.login(user["username"])  # a second session
        path = f"/users/{user['id']}/password"
        wrong = api.request(
            "PUT",
            path,
            token,
            json={"currentPassword": "not-it-at-all", "newPassword": NEW_PASSWORD},
        )
        assert wrong.status_code == 422
        assert wrong.json()["errors"] == [
            {
                "field": "currentPassword",
                "code": "mismatch",
                "message": "is not the account's current password",
            }
        ]
        assert api.request("GET", f"/users/{user['id']}", token).status_code == 200
        r = api.request(
            "PUT", path, token, json={"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD}
        )
        assert r.status_code == 204, r.text
        # the shared app caches roles for 5 s: this worker forgot the account at once
        for old in (token, other):
            _assert_401(api.request("GET", f"/users/{user['id']}", old), f"/v1/users/{user['id']}")
        bad = api.request(
            "POST", "/auth/tokens", json={"username": user["username"], "password": PASSWORD}
        )
        assert bad.status_code == 401
        fresh = api.login(user["username"], NEW_PASSWORD)
        assert api.request("GET", f"/users/{user['id']}", fresh).status_code == 200

    def test_another_users_account_is_404_and_guesses_are_throttled(
        self, api: Api, settings: Settings
    ) -> None:
        victim = api.register()
        _, token = api.user_token()
        body = {"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD}
        assert (
            api.request("PUT", f"/users/{victim['id']}/password", token, json=body).status_code
            == 404
        )
        user, mine = api.user_token()
        path = f"/users/{user['id']}/password"
        guess = {"currentPassword": "guess-guess", "newPassword": NEW_PASSWORD}
        for _ in range(settings.login_max_failures):
            assert api.request("PUT", path, mine, json=guess).status_code == 422
        limited = api.request("PUT", path, mine, json=body)
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) > 0

    def test_other_workers_stop_accepting_old_tokens_within_the_role_cache_lifetime(
        self, api: Api, settings: Settings
    ) -> None:
        user, token = api.user_token()
        other_worker = create_app(settings.with_overrides(role_cache_seconds=1))
        with other_worker.test_client() as elsewhere:
            headers = {"Authorization": f"Bearer {token}", "X-Tenant-ID": api.tenant or ""}
            assert elsewhere.get(f"/v1/users/{user['id']}", headers=headers).status_code == 200
            r = api.request(
                "PUT",
                f"/users/{user['id']}/password",
                token,
                json={"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD},
            )
            assert r.status_code == 204
            time.sleep(1.1)
            assert elsewhere.get(f"/v1/users/{user['id']}", headers=headers).status_code == 401


class TestLogout:
    def test_revokes_the_token_presented_and_no_other(self, api: Api, client: TestClient) -> None:
        user, token = api.user_token()
        other = api.login(user["username"])
        narrow = client.app.container.tokens.issue(  # type: ignore[attr-defined]
            uuid.UUID(user["id"]), "user", api.tenant or "", frozenset({"read:pets"})
        ).token
        r = api.request("DELETE", "/auth/tokens/current", narrow)  # any valid token may log out
        assert r.status_code == 204, r.text
        path = f"/users/{user['id']}"
        _assert_401(api.request("GET", path, narrow), f"/v1{path}")
        _assert_401(
            api.request("DELETE", "/auth/tokens/current", narrow), "/v1/auth/tokens/current"
        )
        # the account's other sessions go on
        assert api.request("GET", path, token).status_code == 200
        assert api.request("DELETE", "/auth/tokens/current", token).status_code == 204
        _assert_401(api.request("GET", path, token), f"/v1{path}")
        assert api.request("GET", path, other).status_code == 200
        # a password change is what ends every session
        body = {"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD}
        assert api.request("PUT", f"{path}/password", other, json=body).status_code == 204
        _assert_401(api.request("GET", path, other), f"/v1{path}")

    def test_other_workers_refuse_a_logged_out_token_within_the_role_cache_lifetime(
        self, api: Api, settings: Settings
    ) -> None:
        user, token = api.user_token()
        other_worker = create_app(settings.with_overrides(role_cache_seconds=1))
        with other_worker.test_client() as elsewhere:
            headers = {"Authorization": f"Bearer {token}", "X-Tenant-ID": api.tenant or ""}
            assert elsewhere.get(f"/v1/users/{user['id']}", headers=headers).status_code == 200
            assert api.request("DELETE", "/auth/tokens/current", token).status_code == 204
            time.sleep(1.1)
            assert elsewhere.get(f"/v1/users/{user['id']}", headers=headers).status_code == 401

    def test_expired_revocations_are_purged(self, api: Api, settings: Settings) -> None:
        user, token = api.user_token()
        assert api.request("DELETE", "/auth/tokens/current", token).status_code == 204

        def count(session: Session) -> int:
            stmt = select(func.count()).select_from(RevokedToken)
            return int(
                session.scalar(stmt.where(RevokedToken.user_id == uuid.UUID(user["id"]))) or 0
            )

        async def rows(db: Database) -> int:
            return await db.run_system(count)

        async def expire(db: Database) -> None:
            stmt = (
                update(RevokedToken)
                .where(RevokedToken.user_id == uuid.UUID(user["id"]))
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
            await db.run_system(lambda s: s.execute(stmt), write=True)

        assert run_db(settings, rows) == 1
        run_db(settings, expire)
        run_db(settings, purge_revoked_tokens)
        assert run_db(settings, rows) == 0

    def test_without_a_token_is_401(self, api: Api) -> None:
        _assert_401(api.request("DELETE", "/auth/tokens/current"), "/v1/auth/tokens/current")


def test_one_token_logged_out_several_times_at_once_is_revoked_once(
    api: Api, settings: Settings
) -> None:
    """Concurrent logouts of one token (a client retrying) all succeed; one row remembers it
    (on PostgreSQL the losers of the insert race hit the primary key)."""
    user, _ = api.user_token()
    subject = uuid.UUID(user["id"])
    caller = Principal(subject=subject, role="user", scopes=frozenset(), tenant=api.tenant or "")
    jti = uuid.uuid4().hex
    expires = utcnow() + timedelta(hours=1)

    async def go(db: Database) -> int:
        await asyncio.gather(*(revoke_token(db, caller, jti, expires) for _ in range(5)))
        return int(await db.run_system(lambda s: s.get(RevokedToken, jti) is not None))

    assert run_db(settings, go) == 1
