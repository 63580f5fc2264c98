"""Create Authentication Token: JWT contents, equal 401s, throttling, OAuth password grant."""

from __future__ import annotations

import time
import uuid

import jwt
from sqlalchemy import update

from models import User
from models.database import Database
from settings import Settings
from tests.conftest import PASSWORD, PET, Api, jwks_claims, problem, run_db, server_signed


class TestCreateAuthToken:
    def test_201_signed_jwt_with_role_scopes_and_expiry(self, api: Api, settings: Settings) -> None:
        user = api.register()
        r = api.request(
            "POST", "/auth/tokens", json={"username": user["username"], "password": PASSWORD}
        )
        assert r.status_code == 201
        assert r.headers["cache-control"] == "no-store"
        body = r.json()
        assert body["token"] == body["access_token"]
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 86400
        claims = jwks_claims(api.client, body["token"], settings.jwt_issuer)
        assert claims["sub"] == user["id"]
        assert claims["client_id"] == "petstore-api"
        assert claims["role"] == "user"
        assert claims["tid"] == api.tenant
        assert set(claims["scope"].split()) == {
            "read:pets",
            "read:orders",
            "write:orders",
            "read:user",
            "write:user",
            "chat:write",
        }
        assert body["scope"] == claims["scope"]
        assert abs(claims["exp"] - time.time() - 86400) < 60
        assert time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(claims["exp"])) == body["expiresAt"]

    def test_admin_gets_write_pets_and_admin(self, api: Api, settings: Settings) -> None:
        claims = jwks_claims(api.client, api.admin_token(), settings.jwt_issuer)
        assert {"write:pets", "admin"} <= set(claims["scope"].split())

    def test_wrong_password_and_unknown_user_give_the_same_401(self, api: Api) -> None:
        user = api.register()
        wrong = api.request(
            "POST", "/auth/tokens", json={"username": user["username"], "password": "nope-nope"}
        )
        unknown = api.request(
            "POST", "/auth/tokens", json={"username": "ghost", "password": "nope-nope"}
        )
        expected = problem(
            401,
            "invalid-credentials",
            "Unauthorized",
            "Invalid username or password.",
            "/v1/auth/tokens",
        )
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json() == unknown.json() == expected
        assert wrong.headers["www-authenticate"] == unknown.headers["www-authenticate"]

    def test_repeated_failures_are_throttled_even_with_the_right_password(self, api: Api) -> None:
        user = api.register()
        for _ in range(5):
            r = api.request(
                "POST",
                "/auth/tokens",
                json={"username": user["username"], "password": "bad-guess"},
                headers={"X-Forwarded-For": "ignored"},
            )
            assert r.status_code == 401
        r = api.request(
            "POST", "/auth/tokens", json={"username": user["username"], "password": PASSWORD}
        )
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) > 0
        assert r.json()["type"] == "https://petstoreapi.com/errors/rate-limit-exceeded"

    def test_oauth_password_grant_form(self, api: Api) -> None:
        user = api.register()
        r = api.request(
            "POST",
            "/auth/tokens",
            data={"grant_type": "password", "username": user["username"], "password": PASSWORD},
        )
        assert r.status_code == 201, r.text
        token = r.json()["access_token"]
        assert api.request("GET", f"/users/{user['id']}", token).status_code == 200

    def test_400_missing_password(self, api: Api) -> None:
        r = api.request("POST", "/auth/tokens", json={"username": "x"})
        assert r.status_code == 400
        assert r.json()["errors"][0] == {
            "field": "password",
            "code": "required",
            "message": '"password" is a required property',
        }

    def test_expired_token_is_401(self, api: Api, settings: Settings) -> None:
        user = api.register()
        now = int(time.time())
        claims = {
            "sub": user["id"],
            "client_id": "petstore-api",
            "role": "user",
            "scope": "read:user",
            "tid": api.tenant,
            "iat": now - 100,
            "exp": now - 10,
            "jti": uuid.uuid4().hex,
            "aud": "petstore-api",
            "iss": settings.jwt_issuer,
        }
        fresh = server_signed(settings, {**claims, "iat": now, "exp": now + 60})
        assert api.request("GET", f"/users/{user['id']}", fresh).status_code == 200  # baseline
        token = server_signed(settings, claims)
        assert api.request("GET", f"/users/{user['id']}", token).status_code == 401


class TestTokensFollowTheAccount:
    def test_deleted_account_token_is_401(self, api: Api) -> None:
        admin = api.admin_token()
        claims = jwt.decode(admin, options={"verify_signature": False})
        assert api.request("DELETE", f"/users/{claims['sub']}", admin).status_code == 204
        r = api.request("POST", "/pets", admin, json=PET)
        assert r.status_code == 401

    def test_demoted_admin_loses_write_pets(self, api: Api, settings: Settings) -> None:
        from app import create_app

        token = api.admin_token()
        claims = jwt.decode(token, options={"verify_signature": False})

        async def demote(db: Database) -> None:
            stmt = update(User).where(User.id == uuid.UUID(claims["sub"])).values(role="user")
            await db.run(api.tenant or "", lambda s: s.execute(stmt), write=True)

        app = create_app(settings.with_overrides(role_cache_seconds=0))
        with app.test_client() as client:
            headers = {"Authorization": f"Bearer {token}", "X-Tenant-ID": api.tenant or ""}
            assert client.post("/v1/pets", json=PET, headers=headers).status_code == 201
            run_db(settings, demote)
            assert client.post("/v1/pets", json=PET, headers=headers).status_code == 403
