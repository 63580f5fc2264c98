"""Nobody hoards the catalogue (OWASP API6): a client holds at most PETSTORE_ORDER_HOLD_LIMIT
unpaid orders (per account; per client address for guests), Place Order has a per-client
budget of its own, and a guest's hold is shorter. Over REST and GraphQL alike."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from starlette.testclient import TestClient

from app import create_app
from models import Order
from models.base import utcnow
from models.database import Database
from services.orders import orders
from settings import Settings
from tests.api.test_orders import Shop
from tests.conftest import Api, run_db
from tests.graphql_client import GraphQLResult, graphql

CAP_DETAIL = "At most 3 unpaid orders at a time; pay or cancel one before placing another."
CREATE_ORDER = "mutation($input: OrderInput!) { createOrder(input: $input) { id status } }"


def _at(api: Api, address: str) -> Api:
    """The same tenant, seen from another client address (no lifespan: the app is shared)."""
    other = TestClient(api.client.app, client=(address, 50000))
    return Api(other, api.settings, api.tenant)


def _gql_order(api: Api, pet_id: str, token: str | None = None) -> GraphQLResult:
    return graphql(
        api.client, CREATE_ORDER, {"input": {"petId": pet_id}}, token=token, headers=api.headers()
    )


def _refused_at_the_cap(r: Any) -> None:
    assert r.status_code == 409, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"] == CAP_DETAIL


def _seconds(order: dict[str, Any]) -> float:
    placed = datetime.fromisoformat(order["createdAt"].replace("Z", "+00:00"))
    expires = datetime.fromisoformat(order["expiresAt"].replace("Z", "+00:00"))
    return (expires - placed).total_seconds()


@pytest.fixture
def shop(api: Api) -> Shop:
    return Shop(api)


class TestUnpaidOrderCap:
    def test_a_member_holds_at_most_three_unpaid_orders(self, shop: Shop) -> None:
        held = [shop.placed() for _ in range(3)]
        pet = shop.pet()
        _refused_at_the_cap(shop.order(pet["id"], shop.token))
        assert shop.pet_status(pet["id"]) == "AVAILABLE"  # nothing was reserved
        other = shop.api.user_token()[1]  # another account has its own count
        assert shop.order(shop.pet()["id"], other).status_code == 201
        assert shop.pay(held[0]).status_code == 200  # a paid order no longer counts
        assert shop.order(pet["id"], shop.token).status_code == 201
        _refused_at_the_cap(shop.order(shop.pet()["id"], shop.token))
        cancelled = shop.api.request("DELETE", f"/orders/{held[1]['id']}", shop.token)
        assert cancelled.status_code == 204  # nor does a cancelled one
        assert shop.order(shop.pet()["id"], shop.token).status_code == 201

    def test_guests_are_counted_per_client_address(self, shop: Shop) -> None:
        here, there = _at(shop.api, "198.51.100.7"), _at(shop.api, "198.51.100.8")
        for _ in range(3):
            r = here.request("POST", "/orders", json={"petId": shop.pet()["id"]})
            assert r.status_code == 201, r.text
        _refused_at_the_cap(here.request("POST", "/orders", json={"petId": shop.pet()["id"]}))
        # A caller with a token is counted as its account; another address on its own.
        assert shop.order(shop.pet()["id"], shop.token).status_code == 201
        r = there.request("POST", "/orders", json={"petId": shop.pet()["id"]})
        assert r.status_code == 201, r.text

    def test_ipv6_guests_are_counted_per_64(self, shop: Shop) -> None:
        addresses = ["2001:db8:7:1::1", "2001:db8:7:1::2", "2001:db8:7:1:a::3"]
        for address in addresses:
            r = _at(shop.api, address).request("POST", "/orders", json={"petId": shop.pet()["id"]})
            assert r.status_code == 201, r.text
        same_64 = _at(shop.api, "2001:db8:7:1:ffff::4")
        _refused_at_the_cap(same_64.request("POST", "/orders", json={"petId": shop.pet()["id"]}))
        other_64 = _at(shop.api, "2001:db8:7:2::1")
        r = other_64.request("POST", "/orders", json={"petId": shop.pet()["id"]})
        assert r.status_code == 201, r.text

    def test_a_lapsed_hold_is_not_counted(self, shop: Shop) -> None:
        held = [shop.placed() for _ in range(3)]

        async def lapse(db: Database) -> None:
            stmt = (
                update(Order)
                .where(Order.id == uuid.UUID(held[0]["id"]))
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
            await db.run(shop.api.tenant or "", lambda s: s.execute(stmt), write=True)

        run_db(shop.api.settings, lapse)
        assert shop.order(shop.pet()["id"], shop.token).status_code == 201

    def test_graphql_create_order_meets_the_same_cap(self, shop: Shop) -> None:
        for _ in range(3):
            _gql_order(shop.api, shop.pet()["id"], shop.token).ok()
        refused = _gql_order(shop.api, shop.pet()["id"], shop.token)
        assert refused.codes == ["CONFLICT"]
        assert refused.errors[0]["message"] == CAP_DETAIL
        _refused_at_the_cap(shop.order(shop.pet()["id"], shop.token))  # the same count over REST

    def test_a_refusal_at_the_cap_does_not_use_up_the_idempotency_key(self, shop: Shop) -> None:
        held = [shop.placed() for _ in range(3)]
        key = {"Idempotency-Key": str(uuid.uuid4())}
        pet = shop.pet()
        _refused_at_the_cap(shop.order(pet["id"], shop.token, headers=key))
        assert shop.pay(held[0]).status_code == 200
        r = shop.order(pet["id"], shop.token, headers=key)  # runs again: not a replay
        assert r.status_code == 201, r.text
        assert "idempotent-replayed" not in r.headers


class TestGuestHold:
    def test_a_guest_order_holds_its_pet_for_ten_minutes(self, shop: Shop) -> None:
        guest = shop.order(shop.pet()["id"]).json()
        assert _seconds(guest) == pytest.approx(600, abs=2)
        member = shop.placed()
        assert _seconds(member) == pytest.approx(1800, abs=2)


@pytest.fixture
def budgeted(settings: Settings) -> Iterator[Api]:
    """An app of its own (own counters) whose order budget is 2 a minute per client."""
    app = create_app(settings.with_overrides(order_rate_limit_per_minute=2))
    with app.test_client() as client:
        yield Api(client, settings, str(uuid.uuid4()))


class TestOrderBudget:
    def test_place_order_has_its_own_budget_over_rest_and_graphql(self, budgeted: Api) -> None:
        shop = Shop(budgeted)
        pets = [shop.pet()["id"] for _ in range(4)]
        assert shop.order(pets[0], shop.token).status_code == 201
        assert _gql_order(budgeted, pets[1], shop.token).ok()
        over = shop.order(pets[2], shop.token)  # the third this minute, whichever protocol
        assert over.status_code == 429, over.text
        assert 0 < int(over.headers["retry-after"]) <= 60
        assert over.headers["content-type"] == "application/problem+json"
        assert over.json()["detail"].startswith("At most 2 orders a minute")
        refused = _gql_order(budgeted, pets[2], shop.token)
        assert refused.codes == ["RATE_LIMITED"]
        assert 0 < refused.errors[0]["extensions"]["retryAfter"] <= 60
        assert shop.pet_status(pets[2]) == "AVAILABLE"
        # Other requests of the same caller and other clients' orders are not affected.
        assert shop.api.request("GET", f"/pets/{pets[0]}", shop.token).status_code == 200
        elsewhere = _at(budgeted, "198.51.100.20")
        other = elsewhere.user_token()[1]
        r = elsewhere.request("POST", "/orders", other, json={"petId": pets[3]})
        assert r.status_code == 201, r.text

    def test_two_accounts_from_one_address_share_the_order_budget(self, budgeted: Api) -> None:
        shop = Shop(budgeted)
        second = budgeted.user_token()[1]  # another account, opened from the same address
        pets = [shop.pet()["id"] for _ in range(4)]
        assert shop.order(pets[0], shop.token).status_code == 201
        assert _gql_order(budgeted, pets[1], second).ok()
        over = shop.order(pets[2], second)  # the address's third order this minute
        assert over.status_code == 429, over.text
        assert over.json()["detail"].startswith("At most 2 orders a minute")
        assert _gql_order(budgeted, pets[2], shop.token).codes == ["RATE_LIMITED"]
        third = budgeted.user_token()[1]  # a fresh account does not bring a fresh budget
        assert shop.order(pets[2], third).status_code == 429
        assert shop.pet_status(pets[2]) == "AVAILABLE"
        # Another address has a budget of its own.
        r = _at(budgeted, "198.51.100.21").request("POST", "/orders", json={"petId": pets[3]})
        assert r.status_code == 201, r.text


REHOLD_DETAIL = "Your unpaid order for this pet lapsed or was cancelled moments ago"


def _refused_to_rehold(r: Any) -> None:
    assert r.status_code == 409, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["detail"].startswith(REHOLD_DETAIL), body
    assert "other clients can order it now" in body["detail"]
    assert [(e["field"], e["code"]) for e in body["errors"]] == [("petId", "rehold_cooldown")]


def _age_ended_holds(api: Api, pet_id: str, seconds: int) -> None:
    """Move the end of every ended hold on the pet ``seconds`` into the past."""

    async def age(db: Database) -> None:
        stmt = (
            update(Order)
            .where(Order.pet_id == uuid.UUID(pet_id), Order.hold_ended_at.is_not(None))
            .values(hold_ended_at=utcnow() - timedelta(seconds=seconds))
        )
        await db.run(api.tenant or "", lambda s: s.execute(stmt), write=True)

    run_db(api.settings, age)


class TestReholdCooldown:
    """A client cannot renew its own unpaid hold on a pet by re-ordering it (API6): after the
    hold lapsed or it cancelled, it waits PETSTORE_ORDER_REHOLD_SECONDS (default: twice the
    hold); the client is its account or its address. Everyone else may order the pet at once."""

    def test_a_member_cannot_re_hold_a_pet_it_just_cancelled(self, shop: Shop) -> None:
        pet = shop.pet()
        order = shop.order(pet["id"], shop.token).json()
        assert shop.api.request("DELETE", f"/orders/{order['id']}", shop.token).status_code == 204
        _refused_to_rehold(shop.order(pet["id"], shop.token))
        assert shop.pet_status(pet["id"]) == "AVAILABLE"
        _age_ended_holds(shop.api, pet["id"], 3590)  # still inside the hour (twice the hold)
        _refused_to_rehold(shop.order(pet["id"], shop.token))
        _age_ended_holds(shop.api, pet["id"], 3601)  # the cooldown is over
        assert shop.order(pet["id"], shop.token).status_code == 201

    def test_another_client_may_order_the_pet_at_once(self, shop: Shop) -> None:
        pet = shop.pet()
        order = shop.order(pet["id"], shop.token).json()
        assert shop.api.request("DELETE", f"/orders/{order['id']}", shop.token).status_code == 204
        other = shop.api.user_token()[1]
        elsewhere = _at(shop.api, "198.51.100.41")
        assert (
            elsewhere.request("POST", "/orders", other, json={"petId": pet["id"]}).status_code
            == 201
        )

    def test_neither_another_account_nor_going_guest_at_the_same_address_renews_a_hold(
        self, shop: Shop
    ) -> None:
        """Two accounts behind one address taking turns, or one client dropping its token,
        would keep a pet held for ever: the wait is per account *or* address."""
        here = _at(shop.api, "198.51.100.42")
        mine = shop.api.user_token()[1]
        pet = shop.pet()
        order = here.request("POST", "/orders", mine, json={"petId": pet["id"]}).json()
        assert here.request("DELETE", f"/orders/{order['id']}", mine).status_code == 204
        second_account = shop.api.user_token()[1]
        _refused_to_rehold(
            here.request("POST", "/orders", second_account, json={"petId": pet["id"]})
        )
        _refused_to_rehold(here.request("POST", "/orders", json={"petId": pet["id"]}))  # as guest
        # the account itself waits from any address
        there = _at(shop.api, "198.51.100.43")
        _refused_to_rehold(there.request("POST", "/orders", mine, json={"petId": pet["id"]}))

    def test_a_lapsed_hold_cannot_be_renewed_by_its_client(self, shop: Shop) -> None:
        pet = shop.pet()
        order = shop.order(pet["id"], shop.token).json()

        async def lapse(db: Database) -> None:
            stmt = (
                update(Order)
                .where(Order.id == uuid.UUID(order["id"]))
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
            await db.run(shop.api.tenant or "", lambda s: s.execute(stmt), write=True)

        run_db(shop.api.settings, lapse)
        _refused_to_rehold(shop.order(pet["id"], shop.token))  # renewing at the lapse: refused
        assert shop.get(order["id"]).json()["status"] == "CANCELLED"  # read: the lapse is kept
        _refused_to_rehold(shop.order(pet["id"], shop.token))
        guest = _at(shop.api, "198.51.100.44").request("POST", "/orders", json={"petId": pet["id"]})
        assert guest.status_code == 201, guest.text  # anyone else: at once

    def test_guests_wait_per_client_address(self, shop: Shop) -> None:
        here, there = _at(shop.api, "198.51.100.30"), _at(shop.api, "198.51.100.31")
        pet = shop.pet()
        placed = here.request("POST", "/orders", json={"petId": pet["id"]}).json()
        token = {"X-Order-Token": placed["guestToken"]}
        cancelled = here.request("DELETE", f"/orders/{placed['id']}", headers=token)
        assert cancelled.status_code == 204, cancelled.text
        _refused_to_rehold(here.request("POST", "/orders", json={"petId": pet["id"]}))
        r = there.request("POST", "/orders", json={"petId": pet["id"]})
        assert r.status_code == 201, r.text

    def test_a_guests_address_is_forgotten_once_the_wait_is_over(self, shop: Shop) -> None:
        here = _at(shop.api, "198.51.100.32")
        pet = shop.pet()
        placed = here.request("POST", "/orders", json={"petId": pet["id"]}).json()
        token = {"X-Order-Token": placed["guestToken"]}
        assert here.request("DELETE", f"/orders/{placed['id']}", headers=token).status_code == 204

        def kept() -> str | None:
            async def go(db: Database) -> str | None:
                stmt = select(Order.guest_client).where(Order.id == uuid.UUID(placed["id"]))
                return await db.run(shop.api.tenant or "", lambda s: s.scalar(stmt))

            value: str | None = run_db(shop.api.settings, go)
            return value

        rehold = shop.api.settings.order_rehold

        async def housekeeping(db: Database) -> None:
            await orders.forget_ended_holds(db, rehold)

        run_db(shop.api.settings, housekeeping)
        assert kept() is not None  # still inside the wait: it refuses this address
        _age_ended_holds(shop.api, pet["id"], int(rehold.total_seconds()) + 1)
        run_db(shop.api.settings, housekeeping)
        assert kept() is None

    def test_a_cancellation_by_staff_starts_no_cooldown(self, shop: Shop) -> None:
        pet = shop.pet()
        order = shop.order(pet["id"], shop.token).json()
        r = shop.api.request("DELETE", f"/orders/{order['id']}", shop.admin)
        assert r.status_code == 204, r.text
        assert shop.order(pet["id"], shop.token).status_code == 201

    def test_graphql_create_order_meets_the_same_cooldown(self, shop: Shop) -> None:
        pet = shop.pet()
        order = shop.order(pet["id"], shop.token).json()
        assert shop.api.request("DELETE", f"/orders/{order['id']}", shop.token).status_code == 204
        refused = _gql_order(shop.api, pet["id"], shop.token)
        assert refused.codes == ["CONFLICT"]
        assert refused.errors[0]["message"].startswith(REHOLD_DETAIL)
        elsewhere = _at(shop.api, "198.51.100.45")
        _gql_order(elsewhere, pet["id"], shop.api.user_token()[1]).ok()  # another client
