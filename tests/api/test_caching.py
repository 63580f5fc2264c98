"""The read cache and conditional requests: ETag / If-None-Match → 304 on List Pets, Search
Pets (QUERY), Get Pet and Get Inventory; every write (REST, GraphQL, an order's hold, its expiry
sweep and its cancellation, an image upload) changes the tag and the next read shows it."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import event, update
from starlette.testclient import TestClient

from models import Order
from models.base import utcnow
from models.database import Database
from tests.conftest import Api, run_db
from tests.graphql_client import graphql


def get(api: Api, path: str, token: str | None = None, tag: str | None = None) -> Any:
    headers = {"If-None-Match": tag} if tag else {}
    return api.request("GET", path, token, headers=headers)


def revalidate(api: Api, path: str, tag: str, token: str | None = None) -> Any:
    """The conditional read of ``path`` with ``tag``: 304 while nothing changed."""
    r = get(api, path, token, tag)
    assert r.status_code in (200, 304), r.text
    return r


def names(response: Any) -> list[str]:
    return [p["name"] for p in response.json()["data"]]


@pytest.fixture
def staff(api: Api) -> str:
    return api.admin_token()


class TestListPets:
    def test_etag_and_304_without_a_body(self, api: Api, staff: str) -> None:
        api.create_pet(staff, name="Rex")
        first = get(api, "/pets?limit=5")
        assert first.status_code == 200
        tag = first.headers["etag"]
        assert tag.startswith('W/"')
        assert first.headers["cache-control"] == "no-cache"
        assert first.headers["vary"] == "Authorization, X-Tenant-ID"
        again = get(api, "/pets?limit=5", tag=tag)
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == tag
        assert again.headers["vary"] == "Authorization, X-Tenant-ID"
        # a list of tags, and *, match too; another tag does not
        assert get(api, "/pets?limit=5", tag=f'"x", {tag}').status_code == 304
        assert get(api, "/pets?limit=5", tag="*").status_code == 304
        assert get(api, "/pets?limit=5", tag='W/"other"').status_code == 200

    def test_the_tag_depends_on_the_query_and_the_tenant(
        self, api: Api, staff: str, client: TestClient
    ) -> None:
        api.create_pet(staff)
        tag = get(api, "/pets?limit=5").headers["etag"]
        assert get(api, "/pets?limit=6").headers["etag"] != tag
        assert get(api, "/pets?limit=5", tag=tag).status_code == 304
        assert get(api, "/pets?limit=5&species=CAT", tag=tag).status_code == 200
        other = Api(client, api.settings, str(uuid.uuid4()))
        elsewhere = get(other, "/pets?limit=5", tag=tag)
        assert elsewhere.status_code == 200
        assert elsewhere.json()["data"] == []

    def test_a_repeated_list_answers_the_links_of_the_host_asked(
        self, api: Api, staff: str
    ) -> None:
        """The kept body is per API base: a second host's links are its own, not the first's."""
        api.create_pet(staff)
        for host in ("testserver", "localhost", "testserver"):
            r = api.request("GET", "/pets?limit=3", headers={"Host": host})
            assert r.status_code == 200
            assert r.json()["links"]["self"].startswith(f"http://{host}/v1/pets?")
            assert r.json()["data"][0]["links"]["self"].startswith(f"http://{host}/v1/")

    def test_the_same_query_written_differently_gets_the_same_answer(
        self, api: Api, staff: str
    ) -> None:
        api.create_pet(staff, species="CAT", name="Tom")
        api.create_pet(staff, species="DOG", name="Rex")
        one = get(api, "/pets?species=CAT&limit=4")
        other = get(api, "/pets?limit=4&species=CAT")
        assert names(one) == names(other) == ["Tom"]
        assert one.headers["etag"] == other.headers["etag"]
        assert names(get(api, "/pets?limit=4&species=DOG")) == ["Rex"]

    def test_a_rest_write_changes_the_tag_and_shows_on_the_next_read(
        self, api: Api, staff: str
    ) -> None:
        pet = api.create_pet(staff, name="Before")
        first = get(api, "/pets")
        tag = first.headers["etag"]
        assert names(first) == ["Before"]
        r = api.request("PUT", f"/pets/{pet['id']}", staff, json={**_input(pet), "name": "After"})
        assert r.status_code == 200, r.text
        after = revalidate(api, "/pets", tag)
        assert after.status_code == 200
        assert names(after) == ["After"]
        assert after.headers["etag"] != tag
        # created and deleted pets too
        created = api.create_pet(staff, name="Second")
        assert sorted(names(get(api, "/pets"))) == ["After", "Second"]
        assert api.request("DELETE", f"/pets/{created['id']}", staff).status_code == 204
        assert names(get(api, "/pets")) == ["After"]

    def test_a_graphql_write_shows_on_the_next_rest_read_and_back(
        self, api: Api, staff: str
    ) -> None:
        pet = api.create_pet(staff, name="Rest")
        tag = get(api, "/pets").headers["etag"]
        mutation = (
            "mutation($id: ID!, $input: PetInput!) { updatePet(id: $id, input: $input) { name } }"
        )
        done = graphql(
            api.client,
            mutation,
            {"id": pet["id"], "input": {**_input(pet), "name": "Graph"}},
            token=staff,
            headers=api.headers(),
        ).ok()
        assert done["updatePet"]["name"] == "Graph"
        after = revalidate(api, "/pets", tag)
        assert after.status_code == 200
        assert names(after) == ["Graph"]
        # GraphQL reads through the same cache: a REST write shows there at once
        query = "{ pets(first: 10) { edges { node { name } } } }"
        seen = graphql(api.client, query, headers=api.headers()).ok()
        assert [e["node"]["name"] for e in seen["pets"]["edges"]] == ["Graph"]
        r = api.request("PUT", f"/pets/{pet['id']}", staff, json={**_input(pet), "name": "Again"})
        assert r.status_code == 200, r.text
        seen = graphql(api.client, query, headers=api.headers()).ok()
        assert [e["node"]["name"] for e in seen["pets"]["edges"]] == ["Again"]

    def test_an_order_hold_its_cancellation_and_its_expiry_change_the_list(
        self, api: Api, staff: str, app: Any, client: TestClient
    ) -> None:
        pet = api.create_pet(staff)
        _, token = api.user_token()
        available = "/pets?status=AVAILABLE"
        tag = get(api, available).headers["etag"]
        assert len(get(api, available).json()["data"]) == 1

        order = api.request("POST", "/orders", token, json={"petId": pet["id"]})
        assert order.status_code == 201, order.text
        held = revalidate(api, available, tag)
        assert held.status_code == 200
        assert held.json()["data"] == []
        tag = held.headers["etag"]

        assert api.request("DELETE", f"/orders/{order.json()['id']}", token).status_code == 204
        released = revalidate(api, available, tag)
        assert released.status_code == 200
        assert len(released.json()["data"]) == 1

        # A hold that lapses is released by the housekeeping sweep (a system job).
        _other, other_token = api.user_token()
        elsewhere = Api(TestClient(client.app, client=("198.51.100.77", 1)), api.settings, None)
        elsewhere.tenant = api.tenant
        again = elsewhere.request("POST", "/orders", other_token, json={"petId": pet["id"]})
        assert again.status_code == 201, again.text
        tag = get(api, available).headers["etag"]
        assert get(api, available, tag=tag).status_code == 304

        async def lapse(db: Database) -> None:
            stmt = (
                update(Order)
                .where(Order.id == uuid.UUID(again.json()["id"]))
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
            await db.run(api.tenant or "", lambda s: s.execute(stmt), write=True)

        run_db(api.settings, lapse)  # orders only: no cached read changed yet
        assert get(api, available, tag=tag).status_code == 304
        client.portal.call(app.container.orders.housekeeping)  # type: ignore[union-attr]
        swept = revalidate(api, available, tag)
        assert swept.status_code == 200
        assert len(swept.json()["data"]) == 1


class TestSearchPets:
    def test_query_revalidates_post_ignores_if_none_match(self, api: Api, staff: str) -> None:
        api.create_pet(staff, species="CAT", name="Tom")
        body = {"criteria": {"species": ["CAT"]}}
        first = api.request("QUERY", "/pets/search", json=body)
        assert first.status_code == 200, first.text
        tag = first.headers["etag"]
        cond = api.request("QUERY", "/pets/search", json=body, headers={"If-None-Match": tag})
        assert cond.status_code == 304
        assert cond.content == b""
        posted = api.request("POST", "/pets/search", json=body, headers={"If-None-Match": tag})
        assert posted.status_code == 200
        assert [p["name"] for p in posted.json()["data"]] == ["Tom"]
        # the same criteria as GET /v1/pets: the same tag
        assert get(api, "/pets?species=CAT", tag=tag).status_code == 304
        api.create_pet(staff, species="CAT", name="Felix")
        after = api.request("QUERY", "/pets/search", json=body, headers={"If-None-Match": tag})
        assert after.status_code == 200
        assert sorted(p["name"] for p in after.json()["data"]) == ["Felix", "Tom"]


class TestGetPet:
    def test_304_with_the_pet_tag_and_if_match_still_guards_writes(
        self, api: Api, staff: str
    ) -> None:
        pet = api.create_pet(staff, name="Solo")
        path = f"/pets/{pet['id']}"
        first = get(api, path)
        tag = first.headers["etag"]
        assert tag == f'"{uuid.UUID(pet["id"]).hex[-12:]}-1"'
        assert first.headers["cache-control"] == "no-cache"
        cond = get(api, path, tag=tag)
        assert cond.status_code == 304
        assert cond.content == b""
        assert cond.headers["etag"] == tag
        changed = {**_input(pet), "name": "Changed"}
        r = api.request("PUT", path, staff, json=changed, headers={"If-Match": tag})
        assert r.status_code == 200, r.text
        after = revalidate(api, path, tag)
        assert after.status_code == 200
        assert after.json()["name"] == "Changed"
        assert after.headers["etag"] != tag
        stale = api.request("PUT", path, staff, json=changed, headers={"If-Match": tag})
        assert stale.status_code == 412

    def test_an_image_upload_changes_the_pet(self, api: Api, staff: str) -> None:
        pet = api.create_pet(staff)
        path = f"/pets/{pet['id']}"
        tag = get(api, path).headers["etag"]
        assert get(api, path).json()["photos"] == []
        png = io.BytesIO()
        Image.new("RGB", (8, 8), (200, 10, 10)).save(png, "PNG")
        files = {"file": ("a.png", png.getvalue(), "image/png")}
        r = api.request("POST", f"{path}/images", staff, files=files)
        assert r.status_code == 201, r.text
        after = revalidate(api, path, tag)
        assert after.status_code == 200
        assert len(after.json()["photos"]) == 1

    def test_a_deleted_pet_is_404_at_once(self, api: Api, staff: str) -> None:
        pet = api.create_pet(staff)
        path = f"/pets/{pet['id']}"
        tag = get(api, path).headers["etag"]
        assert api.request("DELETE", path, staff).status_code == 204
        assert get(api, path, tag=tag).status_code == 404


class TestInventory:
    def test_304_and_every_write_changes_it(self, api: Api, staff: str) -> None:
        _, token = api.user_token()
        first = get(api, "/inventory", token)
        assert first.status_code == 200
        assert first.headers["cache-control"] == "private, no-cache"
        tag = first.headers["etag"]
        assert first.json()["total"] == 0
        cond = get(api, "/inventory", token, tag)
        assert cond.status_code == 304
        assert cond.content == b""
        pet = api.create_pet(staff)
        after = revalidate(api, "/inventory", tag, token)
        assert after.status_code == 200
        assert after.json()["total"] == 1
        assert after.json()["available"] == 1
        tag = after.headers["etag"]
        assert api.request("POST", "/orders", token, json={"petId": pet["id"]}).status_code == 201
        held = revalidate(api, "/inventory", tag, token)
        assert held.status_code == 200
        assert (held.json()["available"], held.json()["pending"]) == (0, 1)

    def test_a_304_needs_the_scope_too(self, api: Api) -> None:
        _, token = api.user_token()
        tag = get(api, "/inventory", token).headers["etag"]
        assert get(api, "/inventory", None, tag).status_code == 401


def _input(pet: dict[str, Any]) -> dict[str, Any]:
    writable = (
        "name", "species", "ageMonths", "price", "currency", "status", "breed", "size",
        "color", "gender", "goodWithKids", "goodWithPets", "description", "medicalInfo",
    )  # fmt: skip
    return {k: v for k, v in pet.items() if k in writable}


def test_an_admin_force_cancel_shows_on_the_next_read(api: Api, staff: str) -> None:
    pet = api.create_pet(staff)
    _, token = api.user_token()
    order = api.request("POST", "/orders", token, json={"petId": pet["id"]})
    assert order.status_code == 201, order.text
    path = f"/pets/{pet['id']}"
    held = get(api, path)
    assert held.json()["status"] == "PENDING"
    tag = held.headers["etag"]
    assert get(api, path, tag=tag).status_code == 304
    inventory = get(api, "/inventory", token)
    r = api.client.post(
        f"/v1/admin/orders/{order.json()['id']}/cancel",
        json={"reason": "vet check"},
        headers=api.headers(staff),
    )
    assert r.status_code == 200, r.text
    after = revalidate(api, path, tag)
    assert after.status_code == 200
    assert after.json()["status"] == "AVAILABLE"
    counts = revalidate(api, "/inventory", inventory.headers["etag"], token)
    assert counts.status_code == 200
    assert counts.json()["available"] == 1


def test_a_hit_and_a_304_run_no_statement_and_the_cache_stays_bounded(
    api: Api, staff: str, app: Any
) -> None:
    api.create_pet(staff)
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    engines = list(app.container.db._engines)
    tag = get(api, "/pets?limit=7").headers["etag"]  # a miss: stored
    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        assert get(api, "/pets?limit=7").status_code == 200
        assert get(api, "/pets?limit=7", tag=tag).status_code == 304
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)
    assert seen == []
    cache = app.container.cache
    for limit in range(1, 101):
        for page in (1, 2, 3):
            assert get(api, f"/pets?limit={limit}&page={page}").status_code == 200
    assert len(cache) <= api.settings.read_cache_entries
