"""GraphQL against a live server (uvicorn), with a plain HTTP client: one domain, two
protocols. A pet created over REST is read, updated and ordered over GraphQL, and the
reverse; each protocol sees what the other did."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import PET
from tests.graphql_client import PET_FIELDS, graphql
from tests.live.conftest import Live


@pytest.fixture
def http(live: Live) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.base, timeout=10) as client:
        yield client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_pet_created_over_rest_is_read_updated_and_ordered_over_graphql(
    live: Live, http: httpx.Client
) -> None:
    pet = live.create_pet(name="Rest Rex")
    url = f"{live.base}/graphql"

    read = graphql(
        http, f"query($id: ID!) {{ pet(id: $id) {{ {PET_FIELDS} }} }}", {"id": pet["id"]}, url=url
    ).ok()["pet"]
    assert read == {k: pet.get(k) for k in read}

    updated = graphql(
        http,
        "mutation($id: ID!, $input: PetInput!) { updatePet(id: $id, input: $input) "
        "{ name price } }",
        {"id": pet["id"], "input": {**PET, "name": "Rex", "price": "80"}},
        url=url,
        token=live.admin,
    ).ok()["updatePet"]
    assert updated == {"name": "Rex", "price": "80.00"}

    order = graphql(
        http,
        "mutation($input: OrderInput!) { createOrder(input: $input) "
        "{ id status totalAmount pet { name status } } }",
        {"input": {"petId": pet["id"]}},
        url=url,
        token=live.token,
    ).ok()["createOrder"]
    assert order["status"] == "PLACED"
    assert order["totalAmount"] == "80.00"
    assert order["pet"] == {"name": "Rex", "status": "PENDING"}

    rest_pet = http.get(f"/pets/{pet['id']}").json()
    assert (rest_pet["name"], rest_pet["status"]) == ("Rex", "PENDING")
    rest_order = http.get(f"/orders/{order['id']}", headers=_bearer(live.token)).json()
    assert (rest_order["petId"], rest_order["totalAmount"]) == (pet["id"], "80.00")


def test_a_pet_created_over_graphql_is_read_updated_and_ordered_over_rest(
    live: Live, http: httpx.Client
) -> None:
    url = f"{live.base}/graphql"
    created: dict[str, Any] = graphql(
        http,
        "mutation($input: PetInput!) { createPet(input: $input) { id name price } }",
        {"input": {**PET, "name": "Graph Gus"}},
        url=url,
        token=live.admin,
    ).ok()["createPet"]

    rest = http.get(f"/pets/{created['id']}")
    assert rest.status_code == 200
    assert rest.json()["name"] == "Graph Gus"
    put = http.put(
        f"/pets/{created['id']}",
        json={**PET, "name": "Gus", "price": "60.00"},
        headers={**_bearer(live.admin), "If-Match": rest.headers["etag"]},
    )
    assert put.status_code == 200, put.text
    order = http.post("/orders", json={"petId": created["id"]}, headers=_bearer(live.token))
    assert order.status_code == 201, order.text

    mine = graphql(
        http,
        "{ myOrders(first: 5) { edges { node { id totalAmount pet { name status } } } } }",
        url=url,
        token=live.token,
    ).ok()["myOrders"]
    seen = {e["node"]["id"]: e["node"] for e in mine["edges"]}
    assert seen[order.json()["id"]] == {
        "id": order.json()["id"],
        "totalAmount": "60.00",
        "pet": {"name": "Gus", "status": "PENDING"},
    }
    cancelled = graphql(
        http,
        "mutation($id: ID!) { cancelOrder(id: $id) { status } }",
        {"id": order.json()["id"]},
        url=url,
        token=live.token,
    ).ok()
    assert cancelled == {"cancelOrder": {"status": "CANCELLED"}}
    assert http.get(f"/pets/{created['id']}").json()["status"] == "AVAILABLE"
