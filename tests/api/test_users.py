"""User operations: registration, own-account access, ownership and scopes."""

from __future__ import annotations

import uuid

from tests.conftest import PASSWORD, Api, problem


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

    def test_404_for_someone_elses_account(self, api: Api) -> None:
        other = api.register()
        _, token = api.user_token()
        r = api.request("GET", f"/users/{other['id']}", token)
        assert r.status_code == 404
        assert other["username"] not in r.text
        assert r.json() == problem(
            404,
            "not-found",
            "Not Found",
            f"The requested user with ID '{other['id']}' was not found.",
            f"/v1/users/{other['id']}",
        )

    def test_admin_reads_any_account_in_tenant(self, api: Api) -> None:
        other = api.register()
        r = api.request("GET", f"/users/{other['id']}", api.admin_token())
        assert r.status_code == 200
        assert r.json()["id"] == other["id"]

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
