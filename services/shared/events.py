"""Domain events into the outbox, in the caller's transaction.

``publish`` writes the event (its type and data; the webhook sender wraps it in the reference's
envelope: eventId, eventType, timestamp, data) and
one pending delivery per matching subscription: the order's owner's subscriptions and every
admin's in the tenant. The delivery worker (services/delivery.py) sends them after commit; if the
transaction rolls back, neither the change nor its event exists."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from models import Order, User, WebhookDelivery, WebhookEvent, WebhookSubscription
from models.base import utcnow, uuid7
from models.enums import DeliveryStatus, Role

ORDER_STATUS_CHANGED = "order.statusChanged"
PAYMENT_SUCCEEDED = "payment.succeeded"
ORDER_PROCESSED = "order.processed"
EVENT_TYPES = (ORDER_STATUS_CHANGED, PAYMENT_SUCCEEDED)
"""Events a subscription can ask for (order.processed goes only to a callback URL)."""


def host_of(url: str) -> str:
    """A delivery's host for the delivery pool's per-host limit: ``host:port``, lower-cased."""
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = 0
    return f"{(parts.hostname or '').lower()}:{port}"


def rfc3339(value: datetime) -> str:
    """RFC 3339, UTC, whole seconds: ``2025-12-21T13:56:23Z`` (responses use it too). An aware
    value is converted to UTC (a naive one is UTC already, as the database gives it back); the
    year always has four digits (``strftime('%Y')`` writes year 465 as ``465``)."""
    utc = value.astimezone(UTC) if value.tzinfo is not None else value
    return f"{utc.year:04d}-{utc:%m-%dT%H:%M:%S}Z"


def order_snapshot(order: Order) -> dict[str, Any]:
    """The order as the webhook payloads show it (the reference's example fields)."""
    return {
        "id": str(order.id),
        "petId": str(order.pet_id),
        "userId": str(order.user_id) if order.user_id else None,
        "status": order.status,
        "totalAmount": f"{order.total_amount:.2f}",
        "currency": order.currency,
        "createdAt": rfc3339(order.created_at),
        "updatedAt": rfc3339(order.updated_at),
    }


EVENT_SOURCE_FIELDS = frozenset(
    {"object", "number", "last4", "brand", "country", "accountHolderType", "iban",
     "routingNumber", "accountNumber"}
)  # fmt: skip
"""What a ``payment.succeeded`` event shows of the (already masked) payment source: no
cardholder or account holder name, billing address or expiry date."""


def event_source(source: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in source.items() if k in EVENT_SOURCE_FIELDS}


def _record(
    session: Session, tenant: str, event_type: str, data: dict[str, Any], owner: uuid.UUID | None
) -> WebhookEvent:
    event = WebhookEvent(
        id=uuid7(),
        tenant_id=tenant,
        event_type=event_type,
        order_owner_id=owner,
        payload=data,
        created_at=utcnow(),
    )
    session.add(event)
    session.flush()  # the deliveries reference it; no ORM relationship orders the inserts
    return event


def publish(session: Session, order: Order, event_type: str, data: dict[str, Any]) -> WebhookEvent:
    """Record an event about ``order`` and queue it for the subscriptions of the order's tenant
    (explicitly: system jobs run this across tenants)."""
    order_owner = order.user_id
    event = _record(session, order.tenant_id, event_type, data, order_owner)
    owners = [User.role == Role.ADMIN]
    if order_owner is not None:
        owners.append(User.id == order_owner)
    subscriptions = session.scalars(
        select(WebhookSubscription)
        .join(User, User.id == WebhookSubscription.owner_id)
        .where(
            WebhookSubscription.tenant_id == order.tenant_id,
            WebhookSubscription.active.is_(True),
            or_(*owners),
        )
    )
    now = utcnow()
    for subscription in subscriptions:
        if event_type in subscription.events:
            session.add(
                WebhookDelivery(
                    id=uuid7(),
                    tenant_id=order.tenant_id,
                    event_id=event.id,
                    subscription_id=subscription.id,
                    url=subscription.url,
                    host=host_of(subscription.url),
                    status=DeliveryStatus.PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
    return event


def enqueue_callback(
    session: Session, order: Order, url: str, secret: str, data: dict[str, Any]
) -> WebhookDelivery:
    """A one-off ``order.processed`` callback to a caller-supplied (already checked) URL;
    ``secret`` as stored (sealed)."""
    event = _record(session, order.tenant_id, ORDER_PROCESSED, data, order.user_id)
    now = utcnow()
    delivery = WebhookDelivery(
        id=uuid7(),
        tenant_id=order.tenant_id,
        event_id=event.id,
        subscription_id=None,
        url=url,
        host=host_of(url),
        secret=secret,
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(delivery)
    return delivery
