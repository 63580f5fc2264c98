"""X-Tenant-ID isolation: tenant A never sees tenant B's pets or users, and tokens stay in their
tenant."""

from __future__ import annotations

import uuid

from starlette.testclient import TestClient

from settings import Settings
from tests.conftest import Api


def test_pets_are_invisible_across_tenants(client: TestClient, settings: Settings) -> None:
    a, b = Api(client, settings, str(uuid.uuid4())), Api(client, settings, str(uuid.uuid4()))
    pet = a.create_pet(a.admin_token(), name="OnlyInA")
    assert a.request("GET", f"/pets/{pet['id']}").status_code == 200
    assert b.request("GET", f"/pets/{pet['id']}").status_code == 404
    assert b.request("GET", "/pets").json()["pagination"]["totalItems"] == 0
    assert b.request("POST", "/pets/search", json={}).json()["data"] == []
    shared = Api(client, settings, None)
    assert shared.request("GET", f"/pets/{pet['id']}").status_code == 404
    assert pet["id"] not in shared.request("GET", "/pets", params={"limit": 100}).text


def test_writes_cannot_reach_another_tenant(client: TestClient, settings: Settings) -> None:
    a, b = Api(client, settings, str(uuid.uuid4())), Api(client, settings, str(uuid.uuid4()))
    pet = a.create_pet(a.admin_token())
    admin_b = b.admin_token()
    assert (
        b.request(
            "PUT", f"/pets/{pet['id']}", admin_b, json={**_body(pet), "name": "X"}
        ).status_code
        == 404
    )
    assert b.request("DELETE", f"/pets/{pet['id']}", admin_b).status_code == 404
    assert a.request("GET", f"/pets/{pet['id']}").json()["name"] == pet["name"]


def test_users_and_usernames_are_per_tenant(client: TestClient, settings: Settings) -> None:
    a, b = Api(client, settings, str(uuid.uuid4())), Api(client, settings, str(uuid.uuid4()))
    alice_a = a.register("alice")
    alice_b = b.register("alice")  # the same username is free in another tenant
    assert alice_a["id"] != alice_b["id"]
    admin_b = b.admin_token()
    assert b.request("GET", f"/users/{alice_a['id']}", admin_b).status_code == 404


def test_token_cannot_be_used_in_another_tenant(client: TestClient, settings: Settings) -> None:
    a, b = Api(client, settings, str(uuid.uuid4())), Api(client, settings, str(uuid.uuid4()))
    user, token = a.user_token()
    r = b.request("GET", f"/users/{user['id']}", token)
    assert r.status_code == 403
    assert r.json()["detail"] == "The token was issued for another tenant than X-Tenant-ID names."
    # without the header the token's own tenant applies
    r = a.client.get(f"/v1/users/{user['id']}", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200


def test_login_is_per_tenant(client: TestClient, settings: Settings) -> None:
    a, b = Api(client, settings, str(uuid.uuid4())), Api(client, settings, str(uuid.uuid4()))
    user = a.register()
    r = b.request(
        "POST", "/auth/tokens", json={"username": user["username"], "password": "correct-horse-42"}
    )
    assert r.status_code == 401


def _body(pet: dict[str, object]) -> dict[str, object]:
    return {
        k: v
        for k, v in pet.items()
        if k not in {"id", "links", "createdAt", "updatedAt", "tenantId", "photos"}
    }


def test_orders_are_invisible_across_tenants(client: TestClient, settings: Settings) -> None:
    """Even an admin of tenant B cannot read, pay, cancel or order across the boundary."""
    a, b = Api(client, settings, str(uuid.uuid4())), Api(client, settings, str(uuid.uuid4()))
    pet = a.create_pet(a.admin_token())
    _, token_a = a.user_token()
    order = a.request("POST", "/orders", token_a, json={"petId": pet["id"]}).json()
    admin_b = b.admin_token()
    path = f"/orders/{order['id']}"
    assert b.request("GET", path, admin_b).status_code == 404
    assert b.request("DELETE", path, admin_b).status_code == 404
    assert b.request("PATCH", path, admin_b, json={"status": "CANCELLED"}).status_code == 404
    assert b.request("POST", "/orders", admin_b, json={"petId": pet["id"]}).status_code == 422
    assert a.request("GET", path, token_a).json()["status"] == "PLACED"
