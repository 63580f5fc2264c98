"""Webhook and callback hardening (issue 11): callback caps, the continuous delivery pool with a
per-host limit, the outbox purge, SSRF forms and DNS rebinding, sealed secrets, and what the
event payloads carry (no card holder data; links from the configured base only)."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from starlette.testclient import TestClient

from app import create_app, delivery_policy
from infra.webhooks import HttpSender
from models import Order, WebhookAttempt, WebhookDelivery, WebhookEvent, WebhookSubscription
from models.base import utcnow
from models.database import Database
from services.shared.events import host_of
from services.shared.secrets import SecretBox
from services.webhooks import delivery, url_guard
from settings import Settings
from tests.api.test_orders import CARD, Shop
from tests.api.test_webhooks import deliver_now, documented_verify, subscribe
from tests.conftest import PASSWORD, PET, Api, run_db, server_process
from tests.webhook_receiver import Receiver, receiver

CALLBACK = {"amount": "1.00", "currency": "USD", "timestamp": "1"}


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


@pytest.fixture
def shop(api: Api) -> Shop:
    return Shop(api)


@pytest.fixture(scope="module")
def tuned(settings: Settings) -> Iterator[Any]:
    """The app with low callback caps and a public URL (its own counters)."""
    custom = settings.with_overrides(
        callbacks_per_order=2, callbacks_per_hour=3, public_url="https://shop.example.com"
    )
    with create_app(custom).test_client() as c:
        yield c, custom


def _rows(settings: Settings, tenant: str, stmt: Any) -> list[Any]:
    async def go(db: Database) -> list[Any]:
        return await db.run(tenant, lambda s: list(s.scalars(stmt)))

    result: list[Any] = run_db(settings, go)
    return result


class TestCallbackCaps:
    def test_an_order_registers_at_most_its_callbacks_then_409(
        self, tuned: Any, hook: Receiver
    ) -> None:
        client, settings = tuned
        shop = Shop(Api(client, settings, str(uuid.uuid4())))
        order = shop.placed()
        path = f"/orders/{order['id']}"
        body = {**CALLBACK, "callbackUrl": hook.url}
        for _ in range(2):
            assert shop.api.request("POST", path, shop.token, json=body).status_code == 201
        r = shop.api.request("POST", path, shop.token, json=body)
        assert r.status_code == 409, r.text
        problem = r.json()
        assert problem["errors"] == [
            {"field": "callbackUrl", "code": "limit",
             "message": "This order already has the 2 callbacks an order may register."}
        ]  # fmt: skip
        admin = shop.api.request("POST", path, shop.admin, json=body)  # the order's cap, for all
        assert admin.status_code == 409
        stmt = select(WebhookDelivery).where(WebhookDelivery.subscription_id.is_(None))
        assert len(_rows(settings, shop.api.tenant or "", stmt)) == 2

    def test_a_client_queues_at_most_its_hourly_budget_then_429(
        self, tuned: Any, hook: Receiver
    ) -> None:
        client, settings = tuned
        shop = Shop(_at(Api(client, settings, str(uuid.uuid4())), _address()))
        first, second = shop.placed(), shop.placed()
        body = {**CALLBACK, "callbackUrl": hook.url}
        for order in (first, first, second):
            r = shop.api.request("POST", f"/orders/{order['id']}", shop.token, json=body)
            assert r.status_code == 201, r.text
        r = shop.api.request("POST", f"/orders/{second['id']}", shop.token, json=body)
        assert r.status_code == 429, r.text
        assert 0 < int(r.headers["retry-after"]) <= 3600
        assert (
            r.json()["detail"] == "At most 3 order callbacks per hour per client; try again later."
        )
        # Another account from the same address shares the address's budget ...
        other = shop.api.user_token()[1]
        third = shop.placed(other)
        r = shop.api.request("POST", f"/orders/{third['id']}", other, json=body)
        assert r.status_code == 429, r.text
        # ... and has its own from another address.
        elsewhere = _at(shop.api, _address())
        r = elsewhere.request("POST", f"/orders/{third['id']}", other, json=body)
        assert r.status_code == 201, r.text

    def test_fresh_accounts_behind_one_address_share_its_budget(
        self, tuned: Any, hook: Receiver
    ) -> None:
        client, settings = tuned
        shop = Shop(_at(Api(client, settings, str(uuid.uuid4())), _address()))
        body = {**CALLBACK, "callbackUrl": hook.url}
        statuses = []
        for _ in range(4):  # a throwaway account per callback
            token = shop.api.user_token()[1]
            order = shop.placed(token)
            r = shop.api.request("POST", f"/orders/{order['id']}", token, json=body)
            statuses.append(r.status_code)
        assert statuses == [201, 201, 201, 429]

    def test_guests_are_counted_per_address(self, tuned: Any, hook: Receiver) -> None:
        client, settings = tuned
        shop = Shop(Api(client, settings, str(uuid.uuid4())))
        body = {**CALLBACK, "callbackUrl": hook.url}
        first, second = _at(shop.api, _address()), _at(shop.api, _address())
        statuses = []
        for api in (first, first, second):
            order = shop.order(shop.pet()["id"]).json()
            headers = {"X-Order-Token": order["guestToken"]}
            for _ in range(2):
                r = api.request("POST", f"/orders/{order['id']}", json=body, headers=headers)
                statuses.append(r.status_code)
        # three guest callbacks per address per hour; the second address has its own three
        assert statuses == [201, 201, 201, 429, 201, 201]

    def test_refused_urls_spend_the_budget(self, tuned: Any, hook: Receiver) -> None:
        """A refused URL was checked (a DNS lookup): it is charged, so refusals are no free
        resolution probes."""
        client, settings = tuned
        shop = Shop(_at(Api(client, settings, str(uuid.uuid4())), _address()))
        order = shop.placed()
        path = f"/orders/{order['id']}"
        bad = {**CALLBACK, "callbackUrl": "https://no-such-host.invalid/x"}
        for _ in range(3):
            assert shop.api.request("POST", path, shop.token, json=bad).status_code == 422
        body = {**CALLBACK, "callbackUrl": hook.url}
        assert shop.api.request("POST", path, shop.token, json=body).status_code == 429

    def test_unknown_orders_do_not_spend_the_budget(self, tuned: Any, hook: Receiver) -> None:
        """Refused before any URL check (no lookup made): the budget is given back."""
        client, settings = tuned
        shop = Shop(_at(Api(client, settings, str(uuid.uuid4())), _address()))
        body = {**CALLBACK, "callbackUrl": "https://no-such-host.invalid/x"}
        for _ in range(4):
            r = shop.api.request("POST", f"/orders/{uuid.uuid4()}", shop.token, json=body)
            assert r.status_code == 404, r.text
        order = shop.placed()
        body = {**CALLBACK, "callbackUrl": hook.url}
        r = shop.api.request("POST", f"/orders/{order['id']}", shop.token, json=body)
        assert r.status_code == 201, r.text


def _address() -> str:
    """A client address of its own (the tuned app's counters outlive a test)."""
    n = uuid.uuid4().int
    return f"10.{n % 250 + 1}.{(n >> 8) % 250 + 1}.{(n >> 16) % 250 + 1}"


def _at(api: Api, address: str) -> Api:
    """The same app and tenant, seen from another client address."""
    return Api(TestClient(api.client.app, client=(address, 50000)), api.settings, api.tenant)


def _cancel_over_http(http: httpx.Client, token: str, pet_id: str) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    order = http.post("/orders", json={"petId": pet_id}, headers=auth)
    assert order.status_code == 201, order.text
    assert http.delete(f"/orders/{order.json()['id']}", headers=auth).status_code == 204


def _user(http: httpx.Client) -> str:
    name = f"u{uuid.uuid4().hex[:10]}"
    profile = {"firstName": "A", "lastName": "B", "email": f"{name}@example.com"}
    assert http.post("/users", json={"username": name, "password": PASSWORD, **profile})
    login = http.post("/auth/tokens", json={"username": name, "password": PASSWORD})
    token: str = login.json()["token"]
    return token


def test_a_hanging_host_never_delays_another_hosts_deliveries(
    api: Api, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The server's own worker: one host hangs 3 s on every request (the attempt deadline is
    4 s: the proportion of a 9 s hang under the 10 s default), six deliveries queue for it, two
    are in flight (the per-host limit). Meanwhile another host's delivery arrives within a
    second of the event. (The batch worker waited for its slowest delivery: ~3 s.)"""
    admin = api.admin_token()
    tenant = {"X-Tenant-ID": api.tenant or ""}
    with receiver() as slow, receiver() as fast:
        slow.delay = 3.0
        with server_process(
            settings, tmp_path_factory.mktemp("pool"),
            PETSTORE_WEBHOOK_WORKER="1", PETSTORE_WEBHOOK_ALLOW_LOOPBACK="1",
            PETSTORE_WEBHOOK_POLL_SECONDS="0.1", PETSTORE_WEBHOOK_TIMEOUT_SECONDS="4",
            PETSTORE_WEBHOOK_PER_HOST="2", PETSTORE_WEBHOOK_CONCURRENCY="8",
        ) as (base, _):  # fmt: skip
            http = httpx.Client(base_url=base, headers=tenant, timeout=30)
            staff = {"Authorization": f"Bearer {admin}"}
            pets = [http.post("/pets", json=PET, headers=staff).json()["id"] for _ in range(7)]
            hung, other = _user(http), _user(http)
            for token, url in ((hung, slow.url), (other, fast.url)):
                r = http.post("/webhooks", headers={"Authorization": f"Bearer {token}"},
                              json={"url": url, "events": ["order.statusChanged"]})  # fmt: skip
                assert r.status_code == 201, r.text
            for pet in pets[:6]:
                _cancel_over_http(http, hung, pet)
            deadline = time.monotonic() + 10
            while len(slow.requests) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert slow.requests  # the slow host is stuck now
            _cancel_over_http(http, other, pets[6])
            sent = time.monotonic()
            while not fast.requests and time.monotonic() < sent + 5:
                time.sleep(0.01)
            assert fast.requests, "the other host's delivery never arrived"
            assert fast.requests[0].at - sent < 1.0
            assert len(slow.requests) == 2  # the per-host limit: two in flight, four waiting
            deadline = time.monotonic() + 20  # and its queue drains, two at a time
            while len(slow.requests) < 6 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(slow.requests) == 6


def test_a_claim_leaves_out_hosts_at_their_limit(shop: Shop, hook: Receiver) -> None:
    """At-least-once holds with the limit: a host's extra deliveries stay PENDING (not leased),
    and a claimed delivery whose worker died is claimed again after its lease."""
    subscribe(shop, hook.url, events=["order.statusChanged"])
    for _ in range(3):
        order = shop.placed()
        shop.api.request("DELETE", f"/orders/{order['id']}", shop.token)
    policy = replace(delivery_policy(shop.api.settings), per_host=2, lease_seconds=0.2)
    host = host_of(hook.url)

    async def go(db: Database) -> tuple[int, int, int]:
        first = await delivery.claim(db, 50, policy, {})
        mine = [c for c in first if c.url == hook.url]
        again = await delivery.claim(db, 50, policy, {host: 2})
        await asyncio.sleep(0.3)  # the "worker" of the first claim died: its leases run out
        retaken = await delivery.claim(db, 50, policy, {})
        return (
            len(mine),
            len([c for c in again if c.url == hook.url]),
            len([c for c in retaken if c.url == hook.url]),
        )

    assert run_db(shop.api.settings, go) == (2, 0, 2)


def test_a_claim_leaves_out_owners_at_their_limit(shop: Shop, hook: Receiver) -> None:
    """Many names for one (hanging) server are many hosts but one owner: an owner's deliveries
    in flight are capped too (per_owner), so they cannot fill every slot of the pool."""
    names = [
        hook.url.replace("127.0.0.1", name) for name in ("127.0.0.1", "127.0.0.2", "localhost")
    ]
    for url in names:
        subscribe(shop, url, events=["order.statusChanged"])
    order = shop.placed()
    shop.api.request("DELETE", f"/orders/{order['id']}", shop.token)
    policy = replace(delivery_policy(shop.api.settings), per_host=4, per_owner=2)

    async def go(db: Database) -> tuple[int, int, set[str]]:
        first = await delivery.claim(db, 50, policy, {}, {})
        mine = [c for c in first if c.url in names]
        owner = {c.owner for c in mine}
        again = await delivery.claim(db, 50, policy, {}, dict.fromkeys(owner, 2))
        return len(mine), len([c for c in again if c.url in names]), owner

    claimed, again, owners = run_db(shop.api.settings, go)
    assert (claimed, again) == (2, 0)  # the third waits, PENDING, for a free owner slot
    assert owners == {f"user:{shop.user['id']}"}


def test_the_per_owner_limit_is_configurable() -> None:
    env = {"PETSTORE_JWT_SECRET": "x" * 40}
    assert Settings.from_env(env).webhook_per_owner == 4
    env["PETSTORE_WEBHOOK_PER_OWNER"] = "2"
    assert delivery_policy(Settings.from_env(env)).per_owner == 2


class TestPurge:
    def test_old_delivered_and_dead_rows_are_purged_in_batches(
        self, shop: Shop, hook: Receiver
    ) -> None:
        created = subscribe(shop, hook.url, events=["order.statusChanged"])
        for _ in range(5):
            order = shop.placed()
            shop.api.request("DELETE", f"/orders/{order['id']}", shop.token)
        settings = shop.api.settings
        for _ in range(100):
            deliver_now(settings)
            stmt = select(WebhookDelivery).where(
                WebhookDelivery.subscription_id == uuid.UUID(created["id"])
            )
            rows = _rows(settings, shop.api.tenant or "", stmt)
            if len(rows) == 5 and all(r.status == "DELIVERED" for r in rows):
                break
            time.sleep(0.05)
        assert [r.status for r in rows] == ["DELIVERED"] * 5
        fresh, dead = rows[0], rows[1]
        old = [r.id for r in rows[1:]]
        long_ago = utcnow() - timedelta(days=31)
        tenant = shop.api.tenant or ""

        async def age(db: Database) -> None:
            def work(session: Any) -> None:
                session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id.in_(old))
                    .values(delivered_at=long_ago, next_attempt_at=long_ago)
                )
                session.execute(  # one of them DEAD instead: purged all the same
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id == dead.id)
                    .values(status="DEAD", delivered_at=None)
                )
                ids = select(WebhookDelivery.event_id).where(WebhookDelivery.id.in_(old))
                session.execute(
                    update(WebhookEvent).where(WebhookEvent.id.in_(ids)).values(created_at=long_ago)
                )

            await db.run(tenant, work, write=True)

        run_db(settings, age)
        purged = run_db(
            settings, lambda db: delivery.purge_finished(db, timedelta(days=30), batch=2)
        )
        assert purged >= 4
        left = _rows(settings, tenant, select(WebhookDelivery.id).where(
            WebhookDelivery.subscription_id == uuid.UUID(created["id"])))  # fmt: skip
        assert left == [fresh.id]
        attempts = _rows(settings, tenant, select(WebhookAttempt.delivery_id))
        assert set(attempts) == {fresh.id}
        events = _rows(settings, tenant, select(WebhookEvent.id))
        assert events == [fresh.event_id]
        listed = shop.api.request("GET", f"/webhooks/{created['id']}/deliveries", shop.token)
        assert [d["id"] for d in listed.json()["data"]] == [str(fresh.id)]

    def test_pending_and_recent_rows_stay(self, shop: Shop) -> None:
        with receiver() as gone:
            url = gone.url
        subscribe(shop, url, events=["order.statusChanged"])
        order = shop.placed()
        shop.api.request("DELETE", f"/orders/{order['id']}", shop.token)
        settings = shop.api.settings
        tenant = shop.api.tenant or ""

        async def age(db: Database) -> None:
            stmt = (
                update(WebhookEvent)
                .where(WebhookEvent.tenant_id == tenant)
                .values(created_at=utcnow() - timedelta(days=90))
            )
            await db.run(tenant, lambda s: s.execute(stmt), write=True)

        run_db(settings, age)
        run_db(settings, lambda db: delivery.purge_finished(db, timedelta(days=30)))
        assert len(_rows(settings, tenant, select(WebhookDelivery.id))) == 1
        assert len(_rows(settings, tenant, select(WebhookEvent.id))) == 1

    def test_retention_is_configurable(self) -> None:
        env = {"PETSTORE_JWT_SECRET": "x" * 40}
        assert Settings.from_env(env).webhook_retention == timedelta(days=30)
        env["PETSTORE_WEBHOOK_RETENTION_DAYS"] = "7"
        assert Settings.from_env(env).webhook_retention == timedelta(days=7)


class FakeDns:
    """Scripted answers for some names (the system resolver for the rest): a name can
    resolve somewhere else on every lookup, as a rebinding attacker's DNS server does."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.answers: dict[str, list[str]] = {}
        self.lookups: list[str] = []
        self.resolved: list[str] = []
        """Every name looked up in DNS (scripted or not)."""
        real = socket.getaddrinfo

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            name = host.decode() if isinstance(host, bytes) else host
            if kwargs.get("flags", 0) & socket.AI_NUMERICHOST:  # not a lookup
                return real(host, port, *args, **kwargs)
            self.resolved.append(name)
            if name not in self.answers:
                return real(host, port, *args, **kwargs)
            self.lookups.append(name)
            if not self.answers[name]:
                raise socket.gaierror(socket.EAI_NONAME, "no more answers")
            address = self.answers[name].pop(0)
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sockaddr = (
                (address, int(port or 0), 0, 0) if ":" in address else (address, int(port or 0))
            )
            return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


class TestSsrf:
    @pytest.mark.parametrize(
        "url",
        [
            "https://[fec0::1]/hook",
            "https://[::a9fe:a9fe]/hook",
            "https://[64:ff9b:1::a9fe:a9fe]/hook",
            "https://[::ffff:0:a9fe:a9fe]/hook",
            "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook",
            "https://[2002:a00:1::]/hook",
            "https://[64:ff9b::a00:1]/hook",
            "https://100.64.0.1/hook",
            "https://198.18.0.1/hook",
            "https://192.0.0.170/hook",
            "https://239.1.2.3/hook",
            "https://93.184.216.34:22/hook",
            "https://93.184.216.34:6379/hook",
            "https://no-such-host.invalid/hook",
        ],
    )
    def test_every_refusal_reads_the_same(self, strict: Any, url: str) -> None:
        api, token = strict
        r = api.request(
            "POST", "/webhooks", token, json={"url": url, "events": ["payment.succeeded"]}
        )
        assert r.status_code == 422, r.text
        assert r.json()["errors"] == [
            {"field": "url", "message": url_guard.REFUSED, "code": "blocked_url"}
        ]

    @pytest.mark.parametrize(
        "url",
        [
            "http://probe.example.com/hook",
            "https://probe.example.com:22/hook",
            "https://10.0.0.1/hook",
            "https://0x7f.1/hook",
            "https://[fd00::1]/hook",
        ],
    )
    def test_refusals_that_need_no_dns_make_no_lookup(
        self, strict: Any, url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Scheme, port and literal addresses are checked before any resolution, so such a URL
        cannot make the server look a name up."""
        api, token = strict
        dns = FakeDns(monkeypatch)
        r = api.request(
            "POST", "/webhooks", token, json={"url": url, "events": ["payment.succeeded"]}
        )
        assert r.status_code == 422, r.text
        assert dns.resolved == []

    def test_a_hanging_lookup_is_refused_after_its_timeout(
        self, strict: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The registration-time lookup runs under a timeout (2 s) on its own few threads: a
        name whose DNS never answers is refused like any other URL, and promptly."""
        api, token = strict
        real = socket.getaddrinfo

        def hanging(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if host == "hang.example.com" and not kwargs.get("flags", 0) & socket.AI_NUMERICHOST:
                time.sleep(4)
            return real(host, port, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", hanging)
        started = time.monotonic()
        r = api.request(
            "POST", "/webhooks", token,
            json={"url": "https://hang.example.com/hook", "events": ["payment.succeeded"]},
        )  # fmt: skip
        assert r.status_code == 422, r.text
        assert r.json()["errors"] == [
            {"field": "url", "message": url_guard.REFUSED, "code": "blocked_url"}
        ]
        assert time.monotonic() - started < 3.5

    def test_dns_rebinding_is_refused_at_delivery(
        self, strict: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Public when registered, private when delivered: the delivery resolves again and
        refuses, so nothing is sent to the private address."""
        api, _ = strict
        dns = FakeDns(monkeypatch)
        dns.answers["rebind.example.com"] = ["93.184.216.34"] + ["10.0.0.7"] * 10
        url = "https://rebind.example.com/hook"
        shop = Shop(api)
        placed = shop.placed()
        r = api.request("POST", f"/orders/{placed['id']}", shop.token,
                        json={**CALLBACK, "callbackUrl": url})  # fmt: skip
        assert r.status_code == 201, r.text
        policy = replace(delivery_policy(api.settings), allow_loopback=False)

        async def go(db: Database) -> None:
            sender = HttpSender()
            try:
                while await delivery.run_once(db, sender, policy):
                    pass
            finally:
                await sender.close()

        run_db(api.settings, go)
        assert len(dns.lookups) >= 2  # registration, then every delivery attempt
        (row,) = _rows(api.settings, api.tenant or "", select(WebhookDelivery).where(
            WebhookDelivery.id == uuid.UUID(r.json()["callbackId"])))  # fmt: skip
        assert row.last_error == f"blocked: the URL {url_guard.REFUSED}"
        assert row.last_status_code is None

    def test_the_sender_connects_to_the_address_it_checked(
        self, shop: Shop, hook: Receiver, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The name answers loopback for the registration check and the delivery check, and
        nothing after that: the delivery arrives, so the sender never resolved it again (it
        connected to the checked address, with the name in Host)."""
        dns = FakeDns(monkeypatch)
        dns.answers["pinned.example.com"] = ["127.0.0.1", "127.0.0.1"]
        port = hook.url.split(":")[2].split("/")[0]
        url = f"http://pinned.example.com:{port}/hooks"
        order = shop.placed()
        r = shop.api.request("POST", f"/orders/{order['id']}", shop.token,
                             json={**CALLBACK, "callbackUrl": url})  # fmt: skip
        assert r.status_code == 201, r.text
        deliver_now(shop.api.settings)
        (request,) = hook.requests
        assert request.headers["host"] == f"pinned.example.com:{port}"
        assert dns.lookups == ["pinned.example.com", "pinned.example.com"]


@pytest.fixture(scope="module")
def strict(settings: Settings) -> Iterator[tuple[Api, str]]:
    """The app as deployed: https, ports 80/443 and public addresses only."""
    strict = settings.with_overrides(webhook_allow_loopback=False)
    with create_app(strict).test_client() as c:
        api = Api(c, strict, str(uuid.uuid4()))
        yield api, api.user_token()[1]


class TestSecretsAtRest:
    def test_subscription_and_callback_secrets_are_stored_sealed(
        self, shop: Shop, hook: Receiver
    ) -> None:
        created = subscribe(shop, hook.url, events=["order.statusChanged"])
        order = shop.placed()
        r = shop.api.request("POST", f"/orders/{order['id']}", shop.token,
                             json={**CALLBACK, "callbackUrl": hook.url})  # fmt: skip
        callback = r.json()
        settings = shop.api.settings
        tenant = shop.api.tenant or ""
        (stored,) = _rows(settings, tenant, select(WebhookSubscription.secret))
        (queued,) = _rows(settings, tenant, select(WebhookDelivery.secret).where(
            WebhookDelivery.id == uuid.UUID(callback["callbackId"])))  # fmt: skip
        box = SecretBox(settings.jwt_secret)
        for sealed, plain in ((stored, created["secret"]), (queued, callback["secret"])):
            assert sealed.startswith("enc:v1:")
            assert plain not in sealed
            assert box.open(sealed) == plain
        shop.api.request("DELETE", f"/orders/{order['id']}", shop.token)
        deliver_now(settings)
        verify = documented_verify()
        by_type = {q.json["eventType"]: q for q in hook.requests}
        assert verify(created["secret"], by_type["order.statusChanged"].headers[
            "x-webhook-signature"], by_type["order.statusChanged"].body)  # fmt: skip
        assert verify(callback["secret"], by_type["order.processed"].headers[
            "x-webhook-signature"], by_type["order.processed"].body)  # fmt: skip


class TestEventPayloads:
    def test_payment_succeeded_carries_no_cardholder_data(self, shop: Shop, hook: Receiver) -> None:
        subscribe(shop, hook.url, shop.admin, events=["payment.succeeded"])
        order = shop.placed()
        card = {**CARD, "addressLine1": "1 High Street", "addressCity": "London",
                "addressPostCode": "N1 9GU"}  # fmt: skip
        assert shop.pay(order, source=card).status_code == 200
        deliver_now(shop.api.settings)
        (event,) = hook.events("payment.succeeded")
        source = event["data"]["payment"]["source"]
        assert source == {"object": "card", "number": "************4242", "last4": "4242",
                          "brand": "VISA"}  # fmt: skip
        assert "J. Doe" not in hook.requests[0].body.decode()
        assert "High Street" not in hook.requests[0].body.decode()

    def test_bank_account_holder_name_is_left_out(self, shop: Shop, hook: Receiver) -> None:
        subscribe(shop, hook.url, events=["payment.succeeded"])
        order = shop.placed()
        bank = {"object": "bank_account", "accountHolderName": "Jane Roe",
                "accountHolderType": "individual", "country": "DE",
                "iban": "DE89370400440532013000"}  # fmt: skip
        assert shop.pay(order, source=bank).status_code == 200, shop.pay(order, source=bank).text
        deliver_now(shop.api.settings)
        (event,) = hook.events("payment.succeeded")
        source = event["data"]["payment"]["source"]
        assert "accountHolderName" not in source
        assert source["last4"] == "3000"

    def test_receipt_url_never_comes_from_the_request(self, shop: Shop, hook: Receiver) -> None:
        """Without PETSTORE_PUBLIC_URL the event's link is relative, whatever Host says."""
        subscribe(shop, hook.url, shop.admin, events=["payment.succeeded"])
        order = shop.placed()
        forged = {"Host": "localhost:4444", "X-Forwarded-Host": "evil.example"}
        assert shop.pay(order, headers=forged).status_code == 200
        deliver_now(shop.api.settings)
        (event,) = hook.events("payment.succeeded")
        assert event["data"]["receipt"]["receiptUrl"] == f"/v1/orders/{order['id']}"

    def test_receipt_url_uses_the_public_url(self, tuned: Any) -> None:
        client, settings = tuned
        shop = Shop(Api(client, settings, str(uuid.uuid4())))
        with receiver() as hook:
            subscribe(shop, hook.url, shop.admin, events=["payment.succeeded"])
            order = shop.placed()
            assert shop.pay(order, headers={"Host": "localhost:4444"}).status_code == 200
            deliver_now(settings)
            (event,) = hook.events("payment.succeeded")
        assert event["data"]["receipt"]["receiptUrl"] == (
            f"https://shop.example.com/v1/orders/{order['id']}"
        )


def test_callbacks_count_on_the_order_row(shop: Shop, hook: Receiver) -> None:
    order = shop.placed()
    r = shop.api.request("POST", f"/orders/{order['id']}", shop.token,
                         json={**CALLBACK, "callbackUrl": hook.url})  # fmt: skip
    assert r.status_code == 201
    (count,) = _rows(shop.api.settings, shop.api.tenant or "", select(
        Order.callbacks_registered).where(Order.id == uuid.UUID(order["id"])))  # fmt: skip
    assert count == 1
