"""The delivery worker's building blocks on the real database: exclusive claims under
concurrency (FOR UPDATE SKIP LOCKED on PostgreSQL), backoff, signatures, the URL policy."""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import timedelta

import pytest

from infra.webhooks import sign
from models import WebhookDelivery, WebhookEvent
from models.base import utcnow, uuid7
from models.database import Database
from services.shared.errors import InvalidInput
from services.shared.secrets import SecretBox
from services.webhooks import delivery, url_guard
from settings import Settings
from tests.conftest import run_db

BOX = SecretBox("test-key-for-sealed-secrets")
CLAIMERS = 4
DELIVERIES = 40


def _pending(
    settings: Settings, tenant: str, count: int, box: SecretBox = BOX, due_ago: float = 1
) -> set[uuid.UUID]:
    async def go(db: Database) -> set[uuid.UUID]:
        def work(session: object) -> set[uuid.UUID]:
            ids = set()
            for _ in range(count):
                event = WebhookEvent(id=uuid7(), event_type="order.processed", payload={},
                                     created_at=utcnow())  # fmt: skip
                session.add(event)  # type: ignore[attr-defined]
                session.flush()  # type: ignore[attr-defined]
                row = WebhookDelivery(id=uuid7(), event_id=event.id, url="http://127.0.0.1:9/x",
                                      host="127.0.0.1:9", secret=box.seal("whsec_x"),
                                      status="PENDING", attempts=0,
                                      next_attempt_at=utcnow() - timedelta(seconds=due_ago),
                                      created_at=utcnow())  # fmt: skip
                session.add(row)  # type: ignore[attr-defined]
                ids.add(row.id)
            return ids

        return await db.run(tenant, work, write=True)

    result: set[uuid.UUID] = run_db(settings, go)
    return result


def test_a_batch_of_dead_rows_never_reads_as_nothing_due(settings: Settings) -> None:
    """Deliveries found dead while claiming (here: sealed under another key) leave the due set
    and the claim looks again, so a batch of them ahead of live ones never comes back empty
    (a worker would take that for "nothing is due")."""
    tenant = str(uuid.uuid4())
    _pending(settings, tenant, 5, box=SecretBox("another-servers-key"), due_ago=3600)
    good = _pending(settings, tenant, 2, due_ago=1800)
    policy = delivery.DeliveryPolicy(secrets=BOX)

    async def go(db: Database) -> None:
        first = await delivery.claim(db, 3, policy)
        assert first, "a batch of dead rows read as nothing due"
        taken = {c.id for c in first}
        while batch := await delivery.claim(db, 3, policy):
            taken |= {c.id for c in batch}
        assert good <= taken

    run_db(settings, go)


def test_concurrent_claimers_never_take_the_same_delivery(settings: Settings) -> None:
    """Four workers, each with its own connections, claim in small batches until nothing is
    left: every delivery is claimed exactly once. They claim in rounds (all four at once, then
    wait for each other), so every round really races, however the threads are scheduled."""
    mine = _pending(settings, str(uuid.uuid4()), DELIVERIES)
    policy = delivery.DeliveryPolicy(secrets=BOX)
    barrier = threading.Barrier(CLAIMERS)
    claimed: list[list[uuid.UUID]] = [[] for _ in range(CLAIMERS)]
    empty = [False] * CLAIMERS

    def worker(i: int) -> None:
        async def go() -> None:
            db = Database(settings.database_url)
            try:
                while True:
                    barrier.wait()  # the round starts for all four together
                    batch = await delivery.claim(db, 3, policy)
                    claimed[i].extend(c.id for c in batch)
                    empty[i] = not batch
                    barrier.wait()  # every claim of the round is done
                    if all(empty):
                        return
            finally:
                await db.dispose()

        asyncio.run(go())

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(CLAIMERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    taken = [d for ids in claimed for d in ids if d in mine]
    assert len(taken) == len(set(taken)) == DELIVERIES
    assert sum(1 for ids in claimed if set(ids) & mine) > 1  # the work was really shared


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = delivery.DeliveryPolicy(backoff_base=10, backoff_cap=60)
    assert [policy.backoff(n).total_seconds() for n in range(1, 6)] == [10, 20, 40, 60, 60]


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    header = sign("whsec_k", 1700000000, b"{}")
    expected = hmac.new(b"whsec_k", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"


REFUSED_TARGETS = [
    ("gopher://93.184.216.34/", "scheme"),
    ("http://93.184.216.34/", "not https"),
    ("https://93.184.216.34:99999/", "invalid port"),
    ("https://93.184.216.34:8443/", "port 8443"),
    ("https://93.184.216.34:22/", "port 22"),
    ("https:///path", "no host"),
    ("https://no-such-host.invalid/", "does not resolve"),
    ("https://192.168.1.10/", "non-public"),
    ("https://10.1.2.3/", "non-public"),
    ("https://100.64.0.1/", "non-public"),  # shared address space (CGNAT)
    ("https://198.18.0.1/", "non-public"),  # benchmarking
    ("https://198.19.255.1/", "non-public"),
    ("https://192.0.0.8/", "non-public"),  # IETF protocol assignments
    ("https://192.88.99.1/", "non-public"),  # 6to4 relay anycast
    ("https://224.0.0.1/", "non-public"),  # multicast
    ("https://239.255.255.250/", "non-public"),
    ("https://240.0.0.1/", "non-public"),  # reserved
    ("https://255.255.255.255/", "non-public"),
    ("https://[fe80::1]/", "non-public"),
    ("https://[fec0::1]/", "non-public"),  # site-local: is_global on Python 3.11
    ("https://[::8.8.8.8]/", "non-public"),  # IPv4-compatible: is_global on 3.11
    ("https://[::a9fe:a9fe]/", "non-public"),
    ("https://[64:ff9b:1::808:808]/", "non-public"),  # local-use NAT64: is_global on 3.11
    ("https://[::ffff:0:8.8.8.8]/", "non-public"),  # SIIT: is_global on 3.11
    ("https://[::ffff:0:a9fe:a9fe]/", "non-public"),
    ("https://[64:ff9b::a9fe:a9fe]/", "non-public"),  # NAT64 of 169.254.169.254
    ("https://[64:ff9b::a00:1]/", "non-public"),  # NAT64 of 10.0.0.1
    ("https://[2002:a00:1::1]/", "non-public"),  # 6to4 of 10.0.0.1
    ("https://[2002:7f00:1::]/", "non-public"),  # 6to4 of 127.0.0.1
    ("https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "non-public"),  # Teredo
    ("https://[::ffff:10.0.0.1]/", "non-public"),  # IPv4-mapped
    ("https://[fd00::1]/", "non-public"),  # unique local
    ("https://[ff02::1]/", "non-public"),  # multicast
    ("https://[2001:db8::1]/", "non-public"),  # documentation
    ("https://[100::1]/", "non-public"),  # discard
]


@pytest.mark.parametrize(("url", "reason"), REFUSED_TARGETS)
def test_url_policy_refuses_every_special_purpose_form(url: str, reason: str) -> None:
    """Each form is refused for its own reason (logged), and the caller reads one message
    whatever the reason: no port-scan or resolution oracle."""
    with pytest.raises(url_guard.BlockedUrl) as blocked:
        url_guard.resolve(url)
    assert reason in str(blocked.value)
    with pytest.raises(InvalidInput) as err:
        url_guard.check(url, "url")
    assert err.value.errors[0].message == url_guard.REFUSED
    assert err.value.errors[0].code == "blocked_url"


@pytest.mark.parametrize(
    "url",
    [
        "https://93.184.216.34/",
        "http://93.184.216.34/x",  # port 80 is allowed, http is not: refused below
        "https://[2606:4700:4700::1111]/",
        "https://[64:ff9b::808:808]/",  # NAT64 of a public address
        "https://[2002:808:808::1]/",  # 6to4 of a public address
        "https://[::ffff:8.8.8.8]/",
    ],
)
def test_url_policy_admits_public_addresses(url: str) -> None:
    if url.startswith("http://"):
        with pytest.raises(url_guard.BlockedUrl, match="not https"):
            url_guard.resolve(url)
        return
    assert url_guard.resolve(url)


def test_allowed_ports_are_configurable() -> None:
    assert url_guard.resolve("https://93.184.216.34:8443/", ports=frozenset({443, 8443}))
    with pytest.raises(url_guard.BlockedUrl, match="port 443"):
        url_guard.resolve("https://93.184.216.34/", ports=frozenset({8443}))
    settings = Settings.from_env({"PETSTORE_JWT_SECRET": "x" * 40})
    assert settings.webhook_allowed_ports == frozenset({80, 443})
    custom = Settings.from_env(
        {"PETSTORE_JWT_SECRET": "x" * 40, "PETSTORE_WEBHOOK_ALLOWED_PORTS": "443, 8443"}
    )
    assert custom.webhook_allowed_ports == frozenset({443, 8443})


def test_url_policy_allows_loopback_only_when_told() -> None:
    assert url_guard.resolve("http://127.0.0.1:8080/x", allow_loopback=True) == "127.0.0.1"
    assert url_guard.resolve("https://93.184.216.34/x") == "93.184.216.34"
    with pytest.raises(url_guard.BlockedUrl):
        url_guard.resolve("http://127.0.0.1:8080/x")
    with pytest.raises(url_guard.BlockedUrl):  # the development setting admits loopback only
        url_guard.resolve("https://10.0.0.1/x", allow_loopback=True)
    with pytest.raises(url_guard.BlockedUrl):  # and never another scheme
        url_guard.resolve("file:///etc/passwd", allow_loopback=True)
