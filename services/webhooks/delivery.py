"""Webhook and callback delivery: at least once, signed, with exponential backoff.

The worker claims due deliveries (PENDING and due, or DELIVERING with an expired lease after a
crash), marks them DELIVERING with a lease, and posts them outside any transaction. Claims use
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several workers never take the same delivery;
SQLite serializes writers (BEGIN IMMEDIATE), which gives the same guarantee. A 2xx response
ends a delivery (DELIVERED); anything else is retried after ``base * 2**(attempt-1)`` seconds
(capped) until ``max_attempts``, then the delivery is DEAD (redeliverable by its owner).

What goes on the wire (the reference's envelope, the X-Webhook-* headers and the signature) is
the Sender's business (infra/webhooks.py); this module decides when and what to send."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import anyio
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from models import WebhookAttempt, WebhookDelivery, WebhookEvent, WebhookSubscription
from models.base import utcnow
from models.database import Database
from models.enums import DeliveryStatus
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


class Sender(Protocol):
    async def send(self, delivery: Claimed, address: str, timeout_seconds: float) -> int:
        """Send the event, signed, to ``delivery.url`` by connecting to ``address`` (the
        address the URL policy checked); the response status. Raises DeliveryFailed."""
        ...


def _claim(
    session: Session, limit: int, policy: DeliveryPolicy, skip_locked: bool
) -> list[Claimed]:
    now = utcnow()
    due = or_(
        and_(
            WebhookDelivery.status == DeliveryStatus.PENDING, WebhookDelivery.next_attempt_at <= now
        ),
        and_(
            WebhookDelivery.status == DeliveryStatus.DELIVERING, WebhookDelivery.lease_until < now
        ),
    )
    stmt = select(WebhookDelivery).where(due).order_by(WebhookDelivery.next_attempt_at).limit(limit)
    if skip_locked:
        stmt = stmt.with_for_update(skip_locked=True)
    claimed = []
    for delivery in session.scalars(stmt).all():
        event = session.get(WebhookEvent, delivery.event_id)
        secret = delivery.secret
        if delivery.subscription_id is not None:
            subscription = session.get(WebhookSubscription, delivery.subscription_id)
            secret = subscription.secret if subscription else None
        if event is None or secret is None:  # its subscription was deleted meanwhile
            delivery.status = DeliveryStatus.DEAD
            delivery.last_error = "subscription deleted"
            continue
        if delivery.attempts >= policy.max_attempts:  # a worker died during the last attempt
            delivery.status = DeliveryStatus.DEAD
            delivery.lease_until = None
            continue
        delivery.status = DeliveryStatus.DELIVERING
        delivery.lease_until = now + timedelta(seconds=policy.lease_seconds)
        delivery.attempts += 1
        claimed.append(
            Claimed(delivery.id, delivery.url, secret, event.id, event.event_type,
                    event.created_at, event.payload, delivery.attempts)
        )  # fmt: skip
    return claimed


async def claim(db: Database, limit: int, policy: DeliveryPolicy) -> list[Claimed]:
    return await db.run_system(lambda s: _claim(s, limit, policy, db.skip_locked), write=True)


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
                lambda: url_guard.resolve(claimed.url, allow_loopback=policy.allow_loopback),
                abandon_on_cancel=True,
            )
            status_code = await sender.send(claimed, address, policy.timeout_seconds)
        if not 200 <= status_code < 300:
            error = f"endpoint answered {status_code}"
    except url_guard.BlockedUrl as exc:
        error = f"blocked: {exc}"
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
    """Claim and deliver one batch concurrently; the number of deliveries attempted."""
    batch = await claim(db, limit, policy)
    async with anyio.create_task_group() as group:
        for claimed in batch:
            group.start_soon(deliver, db, sender, claimed, policy)
    return len(batch)


async def run_worker(
    db: Database, sender: Sender, policy: DeliveryPolicy, poll_seconds: float
) -> None:
    """Deliver until cancelled (the app's lifespan runs one per process)."""
    while True:
        try:
            if await run_once(db, sender, policy):
                continue
        except Exception:
            log.exception("webhook delivery batch failed")
        await anyio.sleep(poll_seconds)
