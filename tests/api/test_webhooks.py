"""Webhooks end to end: subscriptions, the outbox, signed deliveries to a real local endpoint,
retries, DEAD and redelivery, callbacks, and the documented verification recipe."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
import yaml

from app import delivery_policy
from infra.webhooks import HttpSender, sign
from models.database import Database
from services.webhooks import delivery
from settings import ROOT, Settings
from tests.api.test_orders import Shop
from tests.conftest import Api, run_db
from tests.webhook_receiver import Receiver, receiver


def deliver_now(settings: Settings) -> None:
    """Run the delivery worker until nothing is due (the background worker is off in tests).
    It serves every tenant, so tests assert on their own endpoint, never on counts."""

    async def go(db: Database) -> None:
        sender = HttpSender()
        try:
            while await delivery.run_once(db, sender, delivery_policy(settings)):
                pass
        finally:
            await sender.close()

    run_db(settings, go)


def documented_verify() -> Any:
    """The Python snippet from the spec's Webhooks tag, executed as written."""
    spec = yaml.safe_load((ROOT / "spec" / "openapi.yaml").read_text())
    text = next(t["description"] for t in spec["tags"] if t["name"] == "Webhooks")
    code = re.search(r"```python\n(.*?)```", text, re.S)
    assert code is not None
    namespace: dict[str, Any] = {}
    exec(code.group(1), namespace)  # noqa: S102 - our own documentation
    return namespace["verify"]


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


@pytest.fixture
def shop(api: Api) -> Shop:
    return Shop(api)


def subscribe(shop: Shop, url: str, token: str | None = None, **body: Any) -> dict[str, Any]:
    payload = {"url": url, "events": ["order.statusChanged", "payment.succeeded"], **body}
    r = shop.api.request("POST", "/webhooks", token or shop.token, json=payload)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


class TestSubscriptions:
    def test_201_shows_the_secret_once(self, shop: Shop, hook: Receiver) -> None:
        r = shop.api.request(
            "POST", "/webhooks", shop.token,
            json={"url": hook.url, "events": ["payment.succeeded"], "description": "ERP"},
        )  # fmt: skip
        assert r.status_code == 201, r.text
        created = r.json()
        assert created["secret"].startswith("whsec_")
        assert r.headers["location"] == created["links"]["self"]
        assert created["ownerId"] == shop.user["id"]
        again = shop.api.request("GET", f"/webhooks/{created['id']}", shop.token).json()
        assert "secret" not in again
        assert again == {k: v for k, v in created.items() if k != "secret"}
        listed = shop.api.request("GET", "/webhooks", shop.token).json()
        assert [w["id"] for w in listed["data"]] == [created["id"]]

    def test_other_users_see_nothing_admins_see_all(self, shop: Shop, hook: Receiver) -> None:
        created = subscribe(shop, hook.url)
        other = shop.api.user_token()[1]
        path = f"/webhooks/{created['id']}"
        assert shop.api.request("GET", path, other).status_code == 404
        assert shop.api.request("GET", f"{path}/deliveries", other).status_code == 404
        assert shop.api.request("DELETE", path, other).status_code == 404
        assert shop.api.request("GET", "/webhooks", other).json()["data"] == []
        assert shop.api.request("GET", path, shop.admin).status_code == 200
        assert shop.api.request("DELETE", path, shop.token).status_code == 204
        assert shop.api.request("GET", path, shop.token).status_code == 404

    def test_400_for_unknown_events(self, shop: Shop, hook: Receiver) -> None:
        r = shop.api.request(
            "POST", "/webhooks", shop.token, json={"url": hook.url, "events": ["pet.eaten"]}
        )
        assert r.status_code == 400
        assert r.json()["errors"][0]["field"] == "events.0"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data/",
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "http://93.184.216.34/hook",  # public, but not https
        "https://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 of 169.254.169.254
        "https://[2002:7f00:1::]/hook",  # 6to4 of 127.0.0.1
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "ftp://93.184.216.34/hook",
        "http://user:secret@93.184.216.34/hook",
    ],
)
def test_ssrf_targets_are_refused(client_strict: Any, url: str) -> None:
    api, token = client_strict
    r = api.request("POST", "/webhooks", token, json={"url": url, "events": ["payment.succeeded"]})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "url"
    assert r.json()["errors"][0]["code"] == "blocked_url"


def test_a_public_address_is_accepted(client_strict: Any) -> None:
    api, token = client_strict
    body = {"url": "https://93.184.216.34/hook", "events": ["payment.succeeded"]}
    assert api.request("POST", "/webhooks", token, json=body).status_code == 201


@pytest.fixture(scope="module")
def client_strict(settings: Settings) -> Iterator[tuple[Api, str]]:
    """The app as deployed: https and public addresses only (the loopback setting off)."""
    from app import create_app

    strict = settings.with_overrides(webhook_allow_loopback=False)
    with create_app(strict).test_client() as c:
        api = Api(c, strict, str(uuid.uuid4()))
        yield api, api.user_token()[1]


class TestDelivery:
    def test_events_arrive_signed_in_the_reference_envelope(
        self, shop: Shop, hook: Receiver
    ) -> None:
        secret = subscribe(shop, hook.url)["secret"]
        order = shop.placed()
        assert shop.pay(order).status_code == 200
        assert hook.requests == []  # nothing is sent inside the request: the worker sends
        deliver_now(shop.api.settings)
        assert len(hook.requests) == 2
        changed = hook.events("order.statusChanged")
        assert [e["data"]["newStatus"] for e in changed] == ["APPROVED"]
        assert changed[0]["data"]["order"]["id"] == order["id"]
        (paid,) = hook.events("payment.succeeded")
        assert paid["data"]["payment"]["source"]["number"] == "************4242"
        assert paid["data"]["receipt"]["receiptId"].startswith("rcp_")
        verify = documented_verify()
        for request in hook.requests:
            assert set(request.json) == {"eventId", "eventType", "timestamp", "data"}
            assert request.headers["x-webhook-id"] == request.json["eventId"]
            assert request.headers["x-webhook-event"] == request.json["eventType"]
            assert verify(secret, request.headers["x-webhook-signature"], request.body)
            assert not verify("whsec_wrong", request.headers["x-webhook-signature"], request.body)
            assert not verify(secret, request.headers["x-webhook-signature"], request.body + b" ")

    def test_the_recipe_rejects_a_replayed_old_signature(self) -> None:
        body = b'{"eventId":"x"}'
        old = sign("whsec_k", int(time.time()) - 3600, body)
        assert not documented_verify()("whsec_k", old, body)
        assert documented_verify()("whsec_k", sign("whsec_k", int(time.time()), body), body)

    def test_users_get_their_own_orders_events_admins_all(self, shop: Shop, hook: Receiver) -> None:
        with receiver() as staff_hook:
            subscribe(shop, staff_hook.url, shop.admin)
            subscribe(shop, hook.url)
            other = shop.api.user_token()[1]
            theirs = shop.placed(other)
            shop.api.request("DELETE", f"/orders/{theirs['id']}", other)
            deliver_now(shop.api.settings)
            assert hook.requests == []
            assert [e["data"]["order"]["id"] for e in staff_hook.events()] == [theirs["id"]]

    def test_failures_are_retried_with_backoff_then_delivered(
        self, shop: Shop, hook: Receiver
    ) -> None:
        created = subscribe(shop, hook.url, events=["order.statusChanged"])
        hook.statuses = [500, 503]
        order = shop.placed()
        shop.api.request("DELETE", f"/orders/{order['id']}", shop.token)
        settings = shop.api.settings
        deliver_now(settings)
        deliver_now(settings)
        assert len(hook.requests) == 1  # the retry is not due yet: backoff
        for _ in range(100):
            time.sleep(0.05)
            deliver_now(settings)
            if len(hook.requests) == 3:
                break
        event_ids = {r.json["eventId"] for r in hook.requests}
        assert len(hook.requests) == 3
        assert len(event_ids) == 1  # the same event, retried
        listed = shop.api.request("GET", f"/webhooks/{created['id']}/deliveries", shop.token)
        (item,) = listed.json()["data"]
        assert item["status"] == "DELIVERED"
        assert [a.get("statusCode") for a in item["attempts"]] == [500, 503, 200]

    def test_dead_after_the_attempt_budget_then_redelivered(
        self, shop: Shop, hook: Receiver
    ) -> None:
        created = subscribe(shop, hook.url, events=["order.statusChanged"])
        hook.statuses = [500, 500, 500]
        order = shop.placed()
        shop.api.request("DELETE", f"/orders/{order['id']}", shop.token)
        settings = shop.api.settings
        for _ in range(100):
            deliver_now(settings)
            if len(hook.requests) == 3:
                break
            time.sleep(0.05)
        path = f"/webhooks/{created['id']}/deliveries"
        (item,) = shop.api.request("GET", path, shop.token).json()["data"]
        assert item["status"] == "DEAD"
        assert len(item["attempts"]) == 3
        deliver_now(settings)
        assert len(hook.requests) == 3  # DEAD: no more attempts
        r = shop.api.request("POST", f"{path}/{item['id']}/redeliver", shop.token)
        assert r.status_code == 202, r.text
        assert r.json()["status"] == "PENDING"
        deliver_now(settings)
        assert len(hook.requests) == 4
        (item,) = shop.api.request("GET", path, shop.token).json()["data"]
        assert item["status"] == "DELIVERED"
        assert len(item["attempts"]) == 4
        other = shop.api.user_token()[1]
        assert shop.api.request("POST", f"{path}/{item['id']}/redeliver", other).status_code == 404

    def test_an_unreachable_endpoint_is_a_failed_attempt(self, shop: Shop) -> None:
        with receiver() as gone:
            url = gone.url
        created = subscribe(shop, url, events=["order.statusChanged"])
        order = shop.placed()
        shop.api.request("DELETE", f"/orders/{order['id']}", shop.token)
        deliver_now(shop.api.settings)
        (item,) = shop.api.request(
            "GET", f"/webhooks/{created['id']}/deliveries", shop.token
        ).json()["data"]
        assert item["status"] == "PENDING"
        assert "statusCode" not in item["attempts"][0]
        assert "Connect" in item["attempts"][0]["error"]

    def test_a_slow_endpoint_is_cut_off_by_one_deadline(self, shop: Shop, hook: Receiver) -> None:
        """The whole attempt has one deadline, whatever the endpoint trickles."""
        created = subscribe(shop, hook.url, events=["order.statusChanged"])
        hook.delay = 2.0
        order = shop.placed()
        shop.api.request("DELETE", f"/orders/{order['id']}", shop.token)
        policy = replace(delivery_policy(shop.api.settings), timeout_seconds=0.3)

        async def once(db: Database) -> float:
            sender = HttpSender()
            started = time.monotonic()
            try:
                await delivery.run_once(db, sender, policy)
            finally:
                await sender.close()
            return time.monotonic() - started

        assert run_db(shop.api.settings, once) < 1.5
        (item,) = shop.api.request(
            "GET", f"/webhooks/{created['id']}/deliveries", shop.token
        ).json()["data"]
        assert item["attempts"][0]["error"] == "no complete answer within 0.3 s"
        assert item["status"] == "PENDING"

    def test_redirects_are_not_followed(self, shop: Shop, hook: Receiver) -> None:
        with receiver() as target:
            created = subscribe(shop, hook.url, events=["order.statusChanged"])
            hook.statuses = [307]
            hook.location = target.url
            order = shop.placed()
            shop.api.request("DELETE", f"/orders/{order['id']}", shop.token)
            deliver_now(shop.api.settings)
            assert target.requests == []
        (item,) = shop.api.request(
            "GET", f"/webhooks/{created['id']}/deliveries", shop.token
        ).json()["data"]
        assert item["attempts"][0]["statusCode"] == 307
        assert item["attempts"][0]["error"] == "endpoint answered 307"


class TestCallbackExample:
    def test_201_then_the_signed_callback_arrives(self, shop: Shop, hook: Receiver) -> None:
        order = shop.placed()
        body = {"amount": "738.05", "currency": "USD", "timestamp": "1758613403",
                "callbackUrl": hook.url + "/orders/1312312"}  # fmt: skip
        r = shop.api.request("POST", f"/orders/{order['id']}", shop.token, json=body)
        assert r.status_code == 201, r.text
        accepted = r.json()
        assert accepted["message"] == "Callback enqueued"
        deliver_now(shop.api.settings)
        (request,) = hook.requests
        assert request.path == "/hooks/orders/1312312"
        assert request.json["eventType"] == "order.processed"
        assert request.json["data"]["order"]["id"] == order["id"]
        assert request.json["data"]["requestTimestamp"] == "1758613403"
        assert documented_verify()(
            accepted["secret"], request.headers["x-webhook-signature"], request.body
        )

    def test_someone_elses_order_is_404_and_nothing_is_queued(
        self, shop: Shop, hook: Receiver
    ) -> None:
        order = shop.placed()
        other = shop.api.user_token()[1]
        body = {"amount": "1.00", "currency": "USD", "timestamp": "1", "callbackUrl": hook.url}
        assert (
            shop.api.request("POST", f"/orders/{order['id']}", other, json=body).status_code == 404
        )
        deliver_now(shop.api.settings)
        assert hook.requests == []

    def test_guest_uses_the_order_token(self, shop: Shop, hook: Receiver) -> None:
        order = shop.order(shop.pet()["id"]).json()
        body = {"amount": "1.00", "currency": "USD", "timestamp": "1", "callbackUrl": hook.url}
        path = f"/orders/{order['id']}"
        assert shop.api.request("POST", path, json=body).status_code == 401
        headers = {"X-Order-Token": order["guestToken"]}
        assert shop.api.request("POST", path, json=body, headers=headers).status_code == 201


def test_expiring_holds_across_tenants_notifies_only_each_tenant(
    client: Any, settings: Settings
) -> None:
    """The expiry job runs across tenants (a system session); the events it publishes still go
    only to subscribers in the order's own tenant."""
    from sqlalchemy import update

    from models import Order
    from models.base import utcnow
    from services.orders import orders

    a, b = (
        Shop(Api(client, settings, str(uuid.uuid4()))),
        Shop(Api(client, settings, str(uuid.uuid4()))),
    )
    with receiver() as hook_a, receiver() as hook_b:
        subscribe(a, hook_a.url, a.admin)
        subscribe(b, hook_b.url, b.admin)
        order = a.placed()

        async def lapse(db: Database) -> int:
            stmt = (
                update(Order)
                .where(Order.id == uuid.UUID(order["id"]))
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
            await db.run(a.api.tenant or "", lambda s: s.execute(stmt), write=True)
            return await orders.expire_overdue(db)

        assert run_db(settings, lapse) >= 1
        assert a.get(order["id"]).json()["status"] == "CANCELLED"
        assert a.pet_status(order["petId"]) == "AVAILABLE"
        deliver_now(settings)
        (event,) = hook_a.events()
        assert event["data"]["changedBy"] == "system"
        assert event["data"]["newStatus"] == "CANCELLED"
        assert hook_b.requests == []
