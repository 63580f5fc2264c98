"""Store inventory: live per-tenant counts, per species, paginated rows."""

from __future__ import annotations

import uuid

from tests.conftest import Api, problem

ZERO = {"available": 0, "pending": 0, "adopted": 0, "notAvailable": 0, "total": 0}


def _stock(api: Api) -> str:
    admin = api.admin_token()
    for species, status in (
        ("DOG", "AVAILABLE"),
        ("DOG", "PENDING"),
        ("CAT", "AVAILABLE"),
        ("CAT", "ADOPTED"),
        ("BIRD", "NOT_AVAILABLE"),
    ):
        api.create_pet(admin, species=species, status=status)
    return admin


class TestGetInventory:
    def test_counts_by_status_and_species(self, api: Api) -> None:
        _stock(api)
        _, token = api.user_token()
        r = api.request("GET", "/inventory", token)
        assert r.status_code == 200, r.text
        body = r.json()
        assert {k: body[k] for k in ZERO} == {
            "available": 2,
            "pending": 1,
            "adopted": 1,
            "notAvailable": 1,
            "total": 5,
        }
        assert body["bySpecies"]["DOG"] == {**ZERO, "available": 1, "pending": 1, "total": 2}
        assert body["bySpecies"]["CAT"] == {**ZERO, "available": 1, "adopted": 1, "total": 2}
        assert body["bySpecies"]["RABBIT"] == ZERO
        assert list(body["bySpecies"]) == ["DOG", "CAT", "RABBIT", "BIRD", "REPTILE", "OTHER"]

    def test_is_live(self, api: Api) -> None:
        admin = _stock(api)
        pet = api.create_pet(admin, species="OTHER")
        assert api.request("GET", "/inventory", admin).json()["total"] == 6
        api.request("DELETE", f"/pets/{pet['id']}", admin)
        assert api.request("GET", "/inventory", admin).json()["bySpecies"]["OTHER"] == ZERO

    def test_other_tenants_pets_are_not_counted(self, api: Api, client, settings) -> None:  # type: ignore[no-untyped-def]
        _stock(api)
        other = Api(client, settings, str(uuid.uuid4()))
        _, token = other.user_token()
        assert other.request("GET", "/inventory", token).json()["total"] == 0

    def test_401_without_token(self, api: Api) -> None:
        r = api.request("GET", "/inventory")
        assert r.status_code == 401
        assert r.json() == problem(
            401, "unauthorized", "Unauthorized", "No authorization token provided", "/v1/inventory"
        )

    def test_403_token_of_another_tenant(self, api: Api, client, settings) -> None:  # type: ignore[no-untyped-def]
        _, token = api.user_token()
        other = Api(client, settings, str(uuid.uuid4()))
        assert other.request("GET", "/inventory", token).status_code == 403


class TestListInventories:
    def test_one_row_per_species_paginated(self, api: Api) -> None:
        _stock(api)
        _, token = api.user_token()
        r = api.request("GET", "/inventories", token, params={"limit": 4})
        assert r.status_code == 200, r.text
        body = r.json()
        assert [row["species"] for row in body["data"]] == ["DOG", "CAT", "RABBIT", "BIRD"]
        assert body["data"][3] == {"species": "BIRD", **ZERO, "notAvailable": 1, "total": 1}
        assert body["pagination"] == {"page": 1, "limit": 4, "totalItems": 6, "totalPages": 2}
        assert body["links"]["next"] == "http://testserver/v1/inventories?page=2&limit=4"
        second = api.request("GET", "/inventories", token, params={"page": 2, "limit": 4}).json()
        assert [row["species"] for row in second["data"]] == ["REPTILE", "OTHER"]

    def test_400_and_401(self, api: Api) -> None:
        _, token = api.user_token()
        r = api.request("GET", "/inventories", token, params={"limit": 0})
        assert r.status_code == 400
        assert r.json()["errors"][0]["field"] == "limit"
        assert api.request("GET", "/inventories").status_code == 401
