"""User operations: registration (the account and its token), own-account access, another
account's public profile, ownership and scopes."""

from __future__ import annotations

import uuid
from typing import Any

import jwt

from settings import Settings
from tests.conftest import PASSWORD, Api, jwks_claims, problem

PUBLIC_FIELDS = {"id", "username", "firstName", "lastName", "createdAt", "links"}
PRIVATE_FIELDS = {"email", "phone", "preferences", "role", "tenantId", "updatedAt"}


def _registration(api: Api, **fields: Any) -> Any:
    username = f"r{uuid.uuid4().hex[:10]}"
    body = {
        "username": username,
        "email": f"{username}@example.com",
        "password": PASSWORD,
        "firstName": "Reg",
        "lastName": "Istered",
        **fields,
    }
    r = api.request("POST", "/users", json=body)
    assert r.status_code == 201, r.text
    return r


def _claims(api: Api, token: str) -> dict[str, Any]:
    return jwks_claims(api.client, token, api.settings.jwt_issuer)


class TestCreateUser:
    def test_201_location_and_no_password_in_body(self, api: Api) -> None:
        r = api.request(
            "POST",
            "/users",
            json={
                "username": "alice",
                "email": "alice@example.com",
                "password": PASSWORD,
                "firstName": "Alice",
                "lastName": "Liddell",
                "phone": "+12025551234",
                "preferences": {"newsletter": True, "preferredSpecies": ["CAT"]},
            },
        )
        assert r.status_code == 201, r.text
        user = r.json()
        assert r.headers["location"] == f"http://testserver/v1/users/{user['id']}"
        assert "password" not in r.text
        assert "hash" not in r.text
        assert user["role"] == "user"
        assert user["tenantId"] == api.tenant
        assert user["preferences"] == {"newsletter": True, "preferredSpecies": ["CAT"]}
        assert set(user["token"]) == {
            "token",
            "expiresAt",
            "access_token",
            "token_type",
            "expires_in",
            "scope",
        }
        assert r.headers["cache-control"] == "no-store"  # it carries a token

    def test_the_token_works_at_once(self, api: Api) -> None:
        r = _registration(api, phone="+12025551234")
        account = r.json()
        token = account.pop("token")["token"]
        got = api.request("GET", f"/users/{account['id']}", token)
        assert got.status_code == 200, got.text
        assert got.json() == account  # the whole account: it is the caller's own
        inventory = api.request("GET", "/inventory", token)  # and anything else a token opens
        assert inventory.status_code == 200, inventory.text

    def test_the_token_is_the_one_a_login_gives(self, api: Api, settings: Settings) -> None:
        registration = _registration(api).json()
        issued = registration["token"]
        login = api.request(
            "POST",
            "/auth/tokens",
            json={"username": registration["username"], "password": PASSWORD},
        ).json()
        assert set(issued) == set(login)
        assert issued["token"] == issued["access_token"]
        assert (issued["token_type"], issued["expires_in"], issued["scope"]) == (
            login["token_type"],
            login["expires_in"],
            login["scope"],
        )
        mine, theirs = _claims(api, issued["token"]), _claims(api, login["token"])
        assert set(mine) == set(theirs)
        for claim in ("iss", "aud", "sub", "client_id", "role", "scope", "tid", "ver"):
            assert mine[claim] == theirs[claim], claim
        assert mine["sub"] == registration["id"]
        assert mine["tid"] == api.tenant
        assert mine["jti"] != theirs["jti"]  # two tokens, each its own id (logout ends one)
        assert mine["exp"] - mine["iat"] == theirs["exp"] - theirs["iat"] == 86400
        header = jwt.get_unverified_header(issued["token"])
        assert header == jwt.get_unverified_header(login["token"])
        assert header["typ"] == "at+jwt"

    def test_logging_the_registration_token_out_ends_it(self, api: Api) -> None:
        account = _registration(api).json()
        token = account["token"]["token"]
        assert api.request("DELETE", "/auth/tokens/current", token).status_code == 204
        assert api.request("GET", f"/users/{account['id']}", token).status_code == 401

    def test_409_duplicate_username_any_case(self, api: Api) -> None:
        api.register("bob")
        r = api.request(
            "POST",
            "/users",
            json={
                "username": "BOB",
                "email": "other@example.com",
                "password": PASSWORD,
                "firstName": "B",
                "lastName": "B",
            },
        )
        assert r.status_code == 409
        assert r.json() == problem(
            409,
            "conflict",
            "Conflict",
            "The username 'BOB' is already taken.",
            "/v1/users",
            errors=[
                {
                    "field": "username",
                    "message": "The username 'BOB' is already taken.",
                    "code": "duplicate",
                }
            ],
        )

    def test_409_duplicate_email(self, api: Api) -> None:
        api.register("carol", email="same@example.com")
        r = api.request(
            "POST",
            "/users",
            json={
                "username": "carol2",
                "email": "SAME@example.com",
                "password": PASSWORD,
                "firstName": "C",
                "lastName": "C",
            },
        )
        assert r.status_code == 409
        assert r.json()["errors"][0]["field"] == "email"

    def test_400_short_password_and_bad_email(self, api: Api) -> None:
        r = api.request(
            "POST",
            "/users",
            json={
                "username": "dave",
                "email": "not-an-email",
                "password": "short",
                "firstName": "D",
                "lastName": "D",
            },
        )
        assert r.status_code == 400
        assert {e["field"] for e in r.json()["errors"]} == {"email", "password"}


class TestGetUser:
    def test_200_own_account(self, api: Api) -> None:
        user, token = api.user_token()
        r = api.request("GET", f"/users/{user['id']}", token)
        assert r.status_code == 200
        assert r.json() == user

    def test_another_users_account_is_its_public_profile(self, api: Api) -> None:
        other = api.register(phone="+12025551234", preferences={"newsletter": True})
        _, token = api.user_token()
        r = api.request("GET", f"/users/{other['id']}", token)
        assert r.status_code == 200, r.text
        profile = r.json()
        assert set(profile) == PUBLIC_FIELDS
        assert not PRIVATE_FIELDS & set(profile)
        assert other["email"] not in r.text
        assert "+12025551234" not in r.text
        assert profile == {key: other[key] for key in PUBLIC_FIELDS}

    def test_admin_reads_any_account_in_tenant_whole(self, api: Api) -> None:
        other = api.register(phone="+12025551234", preferences={"newsletter": True})
        r = api.request("GET", f"/users/{other['id']}", api.admin_token())
        assert r.status_code == 200
        assert r.json() == other
        assert {"email", "phone", "preferences"} <= set(r.json())

    def test_404_for_a_missing_account(self, api: Api) -> None:
        _, token = api.user_token()
        missing = uuid.uuid4()
        r = api.request("GET", f"/users/{missing}", token)
        assert r.status_code == 404
        assert r.json() == problem(
            404,
            "not-found",
            "Not Found",
            f"The requested user with ID '{missing}' was not found.",
            f"/v1/users/{missing}",
        )

    def test_404_for_an_account_of_another_tenant(self, api: Api, client: Any) -> None:
        other = api.register()
        elsewhere = Api(client, api.settings, str(uuid.uuid4()))
        _, token = elsewhere.user_token()
        r = elsewhere.request("GET", f"/users/{other['id']}", token)
        assert r.status_code == 404
        assert other["username"] not in r.text
        admin = elsewhere.request("GET", f"/users/{other['id']}", elsewhere.admin_token())
        assert admin.status_code == 404

    def test_401(self, api: Api) -> None:
        r = api.request("GET", f"/users/{uuid.uuid4()}")
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == 'Bearer realm="petstore"'


class TestUpdateUser:
    def test_200_own_profile(self, api: Api) -> None:
        user, token = api.user_token()
        body = {
            "username": user["username"],
            "email": "new@example.com",
            "firstName": "New",
            "lastName": "Name",
            "phone": "+441234567890",
        }
        r = api.request("PUT", f"/users/{user['id']}", token, json=body)
        assert r.status_code == 200, r.text
        assert (r.json()["email"], r.json()["phone"]) == ("new@example.com", "+441234567890")
        assert api.request("GET", f"/users/{user['id']}", token).json()["firstName"] == "New"

    def test_404_other_account_untouched(self, api: Api) -> None:
        other = api.register()
        _, token = api.user_token()
        body = {"username": "hijack", "email": "h@example.com", "firstName": "H", "lastName": "H"}
        assert api.request("PUT", f"/users/{other['id']}", token, json=body).status_code == 404
        admin = api.admin_token()
        assert (
            api.request("GET", f"/users/{other['id']}", admin).json()["username"]
            == other["username"]
        )

    def test_409_taking_another_username(self, api: Api) -> None:
        other = api.register()
        user, token = api.user_token()
        body = {
            "username": other["username"],
            "email": user["email"],
            "firstName": "X",
            "lastName": "Y",
        }
        r = api.request("PUT", f"/users/{user['id']}", token, json=body)
        assert r.status_code == 409

    def test_400_and_401(self, api: Api) -> None:
        user, token = api.user_token()
        assert api.request("PUT", f"/users/{user['id']}", token, json={}).status_code == 400
        assert api.request("PUT", f"/users/{user['id']}", json={}).status_code == 401


class TestDeleteUser:
    def test_204_then_the_account_and_its_token_are_gone(self, api: Api) -> None:
        user, token = api.user_token()
        assert api.request("DELETE", f"/users/{user['id']}", token).status_code == 204
        assert api.request("GET", f"/users/{user['id']}", token).status_code == 401
        assert api.request("GET", f"/users/{user['id']}", api.admin_token()).status_code == 404
        r = api.request(
            "POST", "/auth/tokens", json={"username": user["username"], "password": PASSWORD}
        )
        assert r.status_code == 401

    def test_404_for_another_user(self, api: Api) -> None:
        other = api.register()
        _, token = api.user_token()
        assert api.request("DELETE", f"/users/{other['id']}", token).status_code == 404
        assert api.request("GET", f"/users/{other['id']}", api.admin_token()).status_code == 200

    def test_401(self, api: Api) -> None:
        assert api.request("DELETE", f"/users/{uuid.uuid4()}").status_code == 401
