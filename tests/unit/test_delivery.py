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
from services.webhooks import delivery, url_guard
from settings import Settings
from tests.conftest import run_db

CLAIMERS = 4
DELIVERIES = 40


def _pending(settings: Settings, tenant: str, count: int) -> set[uuid.UUID]:
    async def go(db: Database) -> set[uuid.UUID]:
        def work(session: object) -> set[uuid.UUID]:
            ids = set()
            for _ in range(count):
                event = WebhookEvent(id=uuid7(), event_type="order.processed", payload={},
                                     created_at=utcnow())  # fmt: skip
                session.add(event)  # type: ignore[attr-defined]
                session.flush()  # type: ignore[attr-defined]
                row = WebhookDelivery(id=uuid7(), event_id=event.id, url="http://127.0.0.1:9/x",
                                      secret="whsec_x", status="PENDING", attempts=0,
                                      next_attempt_at=utcnow() - timedelta(seconds=1),
                                      created_at=utcnow())  # fmt: skip
                session.add(row)  # type: ignore[attr-defined]
                ids.add(row.id)
            return ids

        return await db.run(tenant, work, write=True)

    result: set[uuid.UUID] = run_db(settings, go)
    return result


def test_concurrent_claimers_never_take_the_same_delivery(settings: Settings) -> None:
    """Four workers, each with its own connections, claim in small batches until nothing is
    left: every delivery is claimed exactly once. They claim in rounds (all four at once, then
    wait for each other), so every round really races, however the threads are scheduled."""
    mine = _pending(settings, str(uuid.uuid4()), DELIVERIES)
    policy = delivery.DeliveryPolicy()
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


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("gopher://93.184.216.34/", "https"),
        ("http://93.184.216.34/", "https"),
        ("https://93.184.216.34:99999/", "invalid port"),
        ("https:///path", "name a host"),
        ("https://192.168.1.10/", "private"),
        ("https://100.64.0.1/", "private"),
        ("https://[fe80::1]/", "private"),
        ("https://224.0.0.1/", "private"),
        ("https://[::ffff:10.0.0.1]/", "private"),
        ("https://no-such-host.invalid/", "does not resolve"),
    ],
)
def test_url_policy_refuses(url: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as err:
        url_guard.check(url, "url")
    assert reason in err.value.errors[0].message


def test_url_policy_allows_loopback_only_when_told() -> None:
    assert url_guard.resolve("http://127.0.0.1:8080/x", allow_loopback=True) == "127.0.0.1"
    assert url_guard.resolve("https://93.184.216.34/x") == "93.184.216.34"
    with pytest.raises(url_guard.BlockedUrl):
        url_guard.resolve("http://127.0.0.1:8080/x")
    with pytest.raises(url_guard.BlockedUrl):  # the development setting admits loopback only
        url_guard.resolve("https://10.0.0.1/x", allow_loopback=True)
    with pytest.raises(url_guard.BlockedUrl):  # and never another scheme
        url_guard.resolve("file:///etc/passwd", allow_loopback=True)
