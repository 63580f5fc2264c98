"""Tokens through the real app: forged, foreign and expired tokens are refused alike; a short
signing key is refused at startup; changing the password and logging out end earlier tokens
(at once on the worker that made the change, within the role cache's lifetime elsewhere)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from datetime import timedelta
from typing import Any

import jwt
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from app import create_app
from models import RevokedToken
from models.base import utcnow
from models.database import Database
from services.accounts.users import purge_revoked_tokens, revoke_token
from services.shared.principal import Principal
from settings import ConfigError, Settings
from tests.conftest import PASSWORD, Api, run_db

NEW_PASSWORD = "a-brand-new-secret-7"


def _claims(api: Api, user: dict[str, Any], settings: Settings, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": settings.jwt_issuer,
        "aud": "petstore-api",
        "sub": user["id"],
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


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _assert_401(response: Any, instance: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["status"] == 401
    assert body["instance"] == instance


class TestRefusedTokens:
    @pytest.mark.filterwarnings("ignore:The HMAC key")
    def test_forged_foreign_and_expired_tokens_are_401_problems(
        self, api: Api, settings: Settings
    ) -> None:
        user = api.register()
        path = f"/users/{user['id']}"
        good = jwt.encode(_claims(api, user, settings), settings.jwt_secret, algorithm="HS256")
        assert api.request("GET", path, good).status_code == 200  # the baseline is accepted
        unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(api, user, settings))}."
        tokens = {
            "alg none": unsigned,
            "wrong key": jwt.encode(
                _claims(api, user, settings), "another-key-" + "x" * 40, algorithm="HS256"
            ),
            "wrong audience": jwt.encode(
                _claims(api, user, settings, aud="someone-else"),
                settings.jwt_secret,
                algorithm="HS256",
            ),
            "wrong issuer": jwt.encode(
                _claims(api, user, settings, iss="https://evil.example"),
                settings.jwt_secret,
                algorithm="HS256",
            ),
            "expired": jwt.encode(
                _claims(api, user, settings, iat=int(time.time()) - 700, exp=int(time.time()) - 5),
                settings.jwt_secret,
                algorithm="HS256",
            ),
            "HS512 with the right key": jwt.encode(
                _claims(api, user, settings), settings.jwt_secret, algorithm="HS512"
            ),
        }
        for name, token in tokens.items():
            r = api.request("GET", path, token)
            assert r.status_code == 401, name
            _assert_401(r, f"/v1{path}")

    def test_a_short_signing_key_is_refused_at_startup(self, settings: Settings) -> None:
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
