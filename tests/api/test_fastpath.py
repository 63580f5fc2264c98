"""Repeated anonymous List Pets answered from the read cache in front of Connexion
(handlers/fastpath.py): the same bytes and headers as the full path, 304 for a matching
If-None-Match, the next read after a write is fresh, and anything the full path must judge
(a token, a new query string, another host or tenant, invalid parameters) still goes there."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.testclient import TestClient

from tests.conftest import Api

SAME = ("content-type", "content-length", "etag", "cache-control", "vary")
PER_RESPONSE = {"date", "x-request-id"}


def same_headers(one: Any, other: Any) -> None:
    """The same header names (what changes per response aside) and the same values of those
    the cache answers."""
    assert set(one.headers) - PER_RESPONSE == set(other.headers) - PER_RESPONSE
    assert {h: one.headers[h] for h in SAME} == {h: other.headers[h] for h in SAME}


def served(app: Any) -> int:
    return int(app.container.reads_served_from_cache)


def test_a_repeat_is_served_from_the_cache_as_the_full_path_answered(app: Any, api: Api) -> None:
    api.create_pet(api.admin_token(), name="Fig")
    before = served(app)
    first = api.request("GET", "/pets?limit=3&species=DOG")  # the full path stores it
    assert served(app) == before
    again = api.request("GET", "/pets?limit=3&species=DOG")
    assert served(app) == before + 1
    assert again.status_code == first.status_code == 200
    assert again.content == first.content
    same_headers(again, first)
    assert again.headers["x-request-id"] != first.headers["x-request-id"]  # outer layers ran
    assert "ratelimit-limit" in again.headers
    tagged = api.request(
        "GET", "/pets?limit=3&species=DOG", headers={"If-None-Match": first.headers["etag"]}
    )
    assert tagged.status_code == 304
    assert tagged.content == b""
    assert served(app) == before + 2


def test_a_write_is_seen_on_the_next_read(app: Any, api: Api) -> None:
    token = api.admin_token()
    api.create_pet(token, name="Old")
    api.request("GET", "/pets?limit=5")
    assert [p["name"] for p in api.request("GET", "/pets?limit=5").json()["data"]] == ["Old"]
    api.create_pet(token, name="New")
    names = [p["name"] for p in api.request("GET", "/pets?limit=5").json()["data"]]
    assert sorted(names) == ["New", "Old"]


def test_what_the_full_path_must_judge_goes_there(app: Any, api: Api, client: TestClient) -> None:
    token = api.admin_token()
    api.create_pet(token, name="Pip")
    api.request("GET", "/pets?limit=2")
    api.request("GET", "/pets?limit=2")  # now cached
    count = served(app)
    bad = api.request("GET", "/pets?limit=2", headers={"Authorization": "Bearer nonsense"})
    assert bad.status_code == 401  # a credential is always checked
    assert api.request("GET", "/pets?limit=2", token).status_code == 200
    assert api.request("GET", "/pets?limit=0").status_code == 400  # never validated: no entry
    assert api.request("GET", "/pets?limit=2", headers={"Host": "localhost"}).status_code == 200
    other = Api(client, api.settings, str(uuid.uuid4()))
    assert other.request("GET", "/pets?limit=2").json()["data"] == []
    assert served(app) == count  # none of these was answered from the cache


def test_a_repeated_get_pet_is_served_as_the_full_path_answered(app: Any, api: Api) -> None:
    token = api.admin_token()
    pet = api.create_pet(token, name="Moss")
    path = f"/pets/{pet['id']}"
    first = api.request("GET", path)
    before = served(app)
    again = api.request("GET", path)
    assert served(app) == before + 1
    assert again.content == first.content
    same_headers(again, first)
    tagged = api.request("GET", path, headers={"If-None-Match": first.headers["etag"]})
    assert (tagged.status_code, tagged.content) == (304, b"")
    assert served(app) == before + 2
    # what the full path must judge goes there
    assert api.request("GET", path.upper().replace("/PETS/", "/pets/")).status_code == 200
    assert api.request("GET", path + "?x=1").status_code == 400  # unknown parameter
    assert api.request("GET", path, headers={"Authorization": "Bearer bad"}).status_code == 401
    assert served(app) == before + 2
    # a write moves the version: the next read is fresh, then served again
    replaced = api.request("PUT", path, token, json={**pet_body(pet), "name": "Fern"})
    assert replaced.status_code == 200, replaced.text
    assert api.request("GET", path).json()["name"] == "Fern"
    assert api.request("DELETE", path, token).status_code == 204
    assert api.request("GET", path).status_code == 404


def pet_body(pet: dict[str, Any]) -> dict[str, Any]:
    writable = ("name", "species", "breed", "ageMonths", "size", "gender", "goodWithKids",
                "goodWithPets", "price", "currency", "status", "description")  # fmt: skip
    return {k: pet[k] for k in writable if k in pet}
