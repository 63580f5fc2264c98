"""Webhook and callback delivery: at least once, signed, with exponential backoff.

The worker (``run_worker``) is a continuous pool: it keeps up to ``concurrency`` deliveries in
flight, at most ``per_host`` to one host (the URL's ``host:port``) and ``per_owner`` of one
owner (many names pointing at one hanging server are many hosts but one owner), and claims the
next due delivery as soon as one finishes, so a host (or an owner's hosts) that hangs until the
deadline holds only its own slots and never delays others' deliveries. A host or owner at its
limit is left out of the claim (its due deliveries stay PENDING, not leased while they wait).

It claims due deliveries (PENDING and due, or DELIVERING with an expired lease after a crash),
marks them DELIVERING with a lease, and posts them outside any transaction. Claims use
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several workers never take the same delivery;
SQLite serializes writers (BEGIN IMMEDIATE), which gives the same guarantee. A 2xx response
ends a delivery (DELIVERED); anything else is retried after ``base * 2**(attempt-1)`` seconds
(capped) until ``max_attempts``, then the delivery is DEAD (redeliverable by its owner).
Delivered and dead deliveries (with their attempts, and events left without deliveries) are
purged after a retention period by the housekeeping job (``purge_finished``).

What goes on the wire (the reference's envelope, the X-Webhook-* headers and the signature) is
the Sender's business (infra/webhooks.py); this module decides when and what to send."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import anyio
from sqlalchemy import and_, delete, exists, func, or_, select
from sqlalchemy.orm import Session

from models import WebhookAttempt, WebhookDelivery, WebhookEvent, WebhookSubscription
from models.base import utcnow
from models.database import Database
from models.enums import DeliveryStatus
from services.shared.events import host_of
from services.shared.secrets import SecretBox, Unreadable
from services.webhooks import url_guard

log = logging.getLogger("petstore.webhooks")


@dataclass(frozen=True)
class DeliveryPolicy:
    max_attempts: int = 8
    backoff_base: float = 10.0
    backoff_cap: float = 3600.0
    lease_seconds: float = 60.0
    timeout_seconds: float = 10.0
    """Deadline for one whole attempt (resolve, connect, send, status line); keep it well
    below ``lease_seconds``."""
    allow_loopback: bool = False
    allowed_ports: frozenset[int] = url_guard.DEFAULT_PORTS
    secrets: SecretBox | None = field(default=None, repr=False)
    """Opens the sealed signing secrets (None: none can be opened)."""
    concurrency: int = 32
    """Deliveries in flight at once in one worker process."""
    per_host: int = 4
    """Of those, at most this many to one host (``host:port``)."""
    per_owner: int = 4
    """And at most this many of one owner's (a subscription's owner; a callback's order
    owner, or the order itself for a guest's): many names pointing at one hanging server
    are many hosts, but one owner."""

    def backoff(self, attempt: int) -> timedelta:
        return timedelta(
            seconds=min(self.backoff_base * 2 ** max(attempt - 1, 0), self.backoff_cap)
        )


class DeliveryFailed(Exception):
    """The endpoint could not be reached (connection, timeout, blocked address)."""


@dataclass(frozen=True)
class Claimed:
    """One delivery to attempt: where, the event, and the secret to sign it with."""

    id: uuid.UUID
    url: str
    secret: str
    event_id: uuid.UUID
    event_type: str
    occurred_at: datetime
    data: dict[str, Any]
    attempt: int
    owner: str = ""
    """Whose in-flight deliveries it counts against (``DeliveryPolicy.per_owner``)."""


class Sender(Protocol):
    async def send(self, delivery: Claimed, address: str, timeout_seconds: float) -> int:
        """Send the event, signed, to ``delivery.url`` by connecting to ``address`` (the
        address the URL policy checked); the response status. Raises DeliveryFailed."""
        ...


def _open(policy: DeliveryPolicy, sealed: str | None) -> str | None:
    if sealed is None or policy.secrets is None:
        return None
    try:
        return policy.secrets.open(sealed)
    except Unreadable:
        return None


USER_OWNER = "user:"


def _owner(delivery: WebhookDelivery, event: WebhookEvent, owner_id: uuid.UUID | None) -> str:
    if owner_id is not None:  # a subscription's owner
        return f"{USER_OWNER}{owner_id}"
    if event.order_owner_id is not None:  # a callback on a member's order
        return f"{USER_OWNER}{event.order_owner_id}"
    order = event.payload.get("order") if isinstance(event.payload, dict) else None
    order_id = order.get("id") if isinstance(order, dict) else None
    return f"order:{order_id or delivery.id}"  # a callback on a guest's order


def _owners_full(owners: dict[str, int], policy: DeliveryPolicy) -> list[uuid.UUID]:
    return [
        uuid.UUID(key.removeprefix(USER_OWNER))
        for key, n in owners.items()
        if n >= policy.per_owner and key.startswith(USER_OWNER)
    ]


def _claim(
    session: Session,
    limit: int,
    policy: DeliveryPolicy,
    skip_locked: bool,
    busy: dict[str, int] | None = None,
    owners: dict[str, int] | None = None,
) -> list[Claimed]:
    """Claim up to ``limit`` due deliveries. With ``busy`` (host → deliveries in flight), claim
    at most ``policy.per_host`` per host counting those; hosts already at the limit are left
    out of the query, and the deliveries of a host that reaches it here are not claimed. The
    same with ``owners`` (owner → deliveries in flight) and ``policy.per_owner``."""
    now = utcnow()
    due = or_(
        and_(
            WebhookDelivery.status == DeliveryStatus.PENDING, WebhookDelivery.next_attempt_at <= now
        ),
        and_(
            WebhookDelivery.status == DeliveryStatus.DELIVERING, WebhookDelivery.lease_until < now
        ),
    )
    counts = dict(busy or {})
    full = [h for h, n in counts.items() if n >= policy.per_host] if busy is not None else []
    stmt = select(WebhookDelivery).where(due)
    if full:
        stmt = stmt.where(WebhookDelivery.host.not_in(full))
    by_owner = dict(owners or {})
    full_owners = _owners_full(by_owner, policy) if owners is not None else []
    if full_owners:
        theirs = select(WebhookSubscription.id).where(WebhookSubscription.owner_id.in_(full_owners))
        stmt = stmt.where(
            or_(
                WebhookDelivery.subscription_id.is_(None),
                WebhookDelivery.subscription_id.not_in(theirs),
            ),
            ~exists().where(
                WebhookEvent.id == WebhookDelivery.event_id,
                WebhookDelivery.subscription_id.is_(None),
                WebhookEvent.order_owner_id.in_(full_owners),
            ),
        )
    stmt = stmt.order_by(WebhookDelivery.next_attempt_at).limit(limit)
    if skip_locked:
        stmt = stmt.with_for_update(skip_locked=True)
    claimed: list[Claimed] = []
    while True:
        # Rows found dead here (deleted subscription, unreadable secret, attempts spent) leave
        # the due set, so look again: a batch of them must not read as "nothing is due".
        dropped = _claim_rows(
            session, stmt, limit, policy, busy, counts, owners, by_owner, claimed, now
        )
        if not dropped or len(claimed) >= limit:
            return claimed


def _claim_rows(
    session: Session,
    stmt: Any,
    limit: int,
    policy: DeliveryPolicy,
    busy: dict[str, int] | None,
    counts: dict[str, int],
    owners: dict[str, int] | None,
    by_owner: dict[str, int],
    claimed: list[Claimed],
    now: datetime,
) -> int:
    """One pass of ``_claim`` over the rows ``stmt`` selects: claims into ``claimed``; returns
    how many rows it found dead (and marked DEAD)."""
    dropped = 0
    for delivery in session.scalars(stmt).all():
        if len(claimed) >= limit:
            break
        if busy is not None and counts.get(delivery.host, 0) >= policy.per_host:
            continue  # stays PENDING for a later claim
        event = session.get(WebhookEvent, delivery.event_id)
        sealed = delivery.secret
        owner_id = None
        if delivery.subscription_id is not None:
            subscription = session.get(WebhookSubscription, delivery.subscription_id)
            sealed = subscription.secret if subscription else None
            owner_id = subscription.owner_id if subscription else None
        if event is None or sealed is None:  # its subscription was deleted meanwhile
            delivery.status = DeliveryStatus.DEAD
            delivery.last_error = "subscription deleted"
            dropped += 1
            continue
        owner = _owner(delivery, event, owner_id)
        if owners is not None and by_owner.get(owner, 0) >= policy.per_owner:
            continue  # stays PENDING for a later claim
        secret = _open(policy, sealed)
        if secret is None:
            delivery.status = DeliveryStatus.DEAD
            delivery.lease_until = None
            delivery.last_error = "secret unreadable (PETSTORE_JWT_SECRET changed?)"
            log.error("webhook secret unreadable", extra={"delivery": str(delivery.id)})
            dropped += 1
            continue
        if delivery.attempts >= policy.max_attempts:  # a worker died during the last attempt
            delivery.status = DeliveryStatus.DEAD
            delivery.lease_until = None
            dropped += 1
            continue
        counts[delivery.host] = counts.get(delivery.host, 0) + 1
        by_owner[owner] = by_owner.get(owner, 0) + 1
        delivery.status = DeliveryStatus.DELIVERING
        delivery.lease_until = now + timedelta(seconds=policy.lease_seconds)
        delivery.attempts += 1
        claimed.append(
            Claimed(delivery.id, delivery.url, secret, event.id, event.event_type,
                    event.created_at, event.payload, delivery.attempts, owner)
        )  # fmt: skip
    return dropped


async def claim(
    db: Database,
    limit: int,
    policy: DeliveryPolicy,
    busy: dict[str, int] | None = None,
    owners: dict[str, int] | None = None,
) -> list[Claimed]:
    return await db.run_system(
        lambda s: _claim(s, limit, policy, db.skip_locked, busy, owners), write=True
    )


async def _record(
    db: Database,
    claimed: Claimed,
    policy: DeliveryPolicy,
    status_code: int | None,
    error: str | None,
    duration_ms: int,
) -> None:
    def work(session: Session) -> None:
        delivery = session.get(WebhookDelivery, claimed.id, with_for_update=True)
        if (
            delivery is None
            or delivery.status != DeliveryStatus.DELIVERING
            or delivery.attempts != claimed.attempt
        ):
            return  # the lease ran out and another worker owns the delivery now
        now = utcnow()
        number = (
            session.scalar(
                select(func.count())
                .select_from(WebhookAttempt)
                .where(WebhookAttempt.delivery_id == delivery.id)
            )
            or 0
        ) + 1
        session.add(
            WebhookAttempt(
                tenant_id=delivery.tenant_id,
                delivery_id=delivery.id,
                number=number,
                status_code=status_code,
                error=error,
                duration_ms=duration_ms,
                attempted_at=now,
            )
        )
        delivery.last_status_code = status_code
        delivery.last_error = error
        delivery.lease_until = None
        if status_code is not None and 200 <= status_code < 300:
            delivery.status = DeliveryStatus.DELIVERED
            delivery.delivered_at = now
        elif delivery.attempts >= policy.max_attempts:
            delivery.status = DeliveryStatus.DEAD
        else:
            delivery.status = DeliveryStatus.PENDING
            delivery.next_attempt_at = now + policy.backoff(delivery.attempts)

    await db.run_system(work, write=True)


async def deliver(db: Database, sender: Sender, claimed: Claimed, policy: DeliveryPolicy) -> bool:
    started = time.monotonic()
    status_code: int | None = None
    error: str | None = None
    try:
        # One deadline for the whole attempt (httpx's timeout is per read), well inside the
        # lease: a slow resolver or a receiver trickling bytes cannot hold the worker or
        # outlive the claim.
        with anyio.fail_after(policy.timeout_seconds):
            address = await anyio.to_thread.run_sync(
                lambda: url_guard.resolve(
                    claimed.url,
                    allow_loopback=policy.allow_loopback,
                    ports=policy.allowed_ports,
                ),
                abandon_on_cancel=True,
            )
            status_code = await sender.send(claimed, address, policy.timeout_seconds)
        if not 200 <= status_code < 300:
            error = f"endpoint answered {status_code}"
    except url_guard.BlockedUrl as exc:
        # The owner sees the attempts: one wording whatever the reason (no resolution or
        # port oracle); the reason goes to the server's log.
        log.warning("webhook target refused", extra={"delivery": str(claimed.id),
                                                      "reason": str(exc)})  # fmt: skip
        error = f"blocked: the URL {url_guard.REFUSED}"
    except DeliveryFailed as exc:
        error = str(exc)[:500]
    except TimeoutError:
        error = f"no complete answer within {policy.timeout_seconds:g} s"
    except Exception as exc:
        log.exception("webhook delivery failed unexpectedly")
        error = f"internal error: {type(exc).__name__}"
    duration_ms = int((time.monotonic() - started) * 1000)
    with anyio.CancelScope(shield=True):
        await _record(db, claimed, policy, status_code, error, duration_ms)
    return error is None


async def run_once(db: Database, sender: Sender, policy: DeliveryPolicy, limit: int = 20) -> int:
    """Claim and deliver one batch concurrently; the number of deliveries attempted (tests and
    tools drain the queue with it; the app runs ``run_worker``)."""
    batch = await claim(db, limit, policy)
    async with anyio.create_task_group() as group:
        for claimed in batch:
            group.start_soon(deliver, db, sender, claimed, policy)
    return len(batch)


async def run_worker(
    db: Database, sender: Sender, policy: DeliveryPolicy, poll_seconds: float
) -> None:
    """Deliver until cancelled (the app's lifespan runs one per process): a continuous pool of
    at most ``policy.concurrency`` deliveries, ``policy.per_host`` per host. A new delivery
    starts as soon as a slot frees; with nothing due it looks again after ``poll_seconds`` (or
    as soon as a delivery finishes). Cancelled deliveries are left DELIVERING: their lease runs
    out and another claim takes them again (at least once)."""
    busy: dict[str, int] = {}
    owners: dict[str, int] = {}
    running: set[asyncio.Task[bool]] = set()
    finished = asyncio.Event()

    def release(counts: dict[str, int], key: str) -> None:
        counts[key] -= 1
        if not counts[key]:
            del counts[key]

    def done(host: str, owner: str, task: asyncio.Task[bool]) -> None:
        running.discard(task)
        release(busy, host)
        release(owners, owner)
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook delivery failed", exc_info=task.exception())
        finished.set()

    try:
        while True:
            finished.clear()  # a delivery finishing from here on wakes the wait below
            started = 0
            free = policy.concurrency - len(running)
            if free > 0:
                try:
                    batch = await claim(db, free, policy, busy, owners)
                except Exception:
                    log.exception("webhook claim failed")
                    batch = []
                for item in batch:
                    host = host_of(item.url)
                    busy[host] = busy.get(host, 0) + 1
                    owners[item.owner] = owners.get(item.owner, 0) + 1
                    task = asyncio.create_task(deliver(db, sender, item, policy))
                    running.add(task)
                    task.add_done_callback(
                        lambda t, h=host, o=item.owner: done(h, o, t)  # type: ignore[misc]
                    )
                    started += 1
            if started and len(running) < policy.concurrency:
                continue  # more may be due (other hosts)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), poll_seconds)
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)


def _finished_before(cutoff: datetime) -> Any:
    return or_(
        and_(
            WebhookDelivery.status == DeliveryStatus.DELIVERED,
            WebhookDelivery.delivered_at < cutoff,
        ),
        and_(
            WebhookDelivery.status == DeliveryStatus.DEAD,
            WebhookDelivery.next_attempt_at < cutoff,
        ),
    )


async def purge_finished(db: Database, retention: timedelta, batch: int = 500) -> int:
    """System job: delete deliveries DELIVERED or DEAD longer than ``retention`` ago, with their
    attempts, then the events older than that which no delivery refers to any more; in
    batches of ``batch`` rows, one transaction each. The number of deliveries deleted."""
    cutoff = utcnow() - retention

    def deliveries(session: Session) -> int:
        ids = list(
            session.scalars(select(WebhookDelivery.id).where(_finished_before(cutoff)).limit(batch))
        )
        if ids:
            session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(ids)))
            session.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_(ids)))
        return len(ids)

    def orphans(session: Session) -> int:
        referred = exists().where(WebhookDelivery.event_id == WebhookEvent.id)
        ids = list(
            session.scalars(
                select(WebhookEvent.id)
                .where(WebhookEvent.created_at < cutoff, ~referred)
                .limit(batch)
            )
        )
        if ids:
            session.execute(delete(WebhookEvent).where(WebhookEvent.id.in_(ids)))
        return len(ids)

    total = 0
    while (count := await db.run_system(deliveries, write=True)) > 0:
        total += count
        if count < batch:
            break
    while await db.run_system(orphans, write=True) == batch:
        pass
    return total
