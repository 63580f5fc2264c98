"""Webhook subscriptions and deliveries → #/components/schemas/Webhook*."""

from __future__ import annotations

from typing import Any

from models import WebhookAttempt, WebhookSubscription
from models.enums import DeliveryStatus
from schemas.common import collection_links, page_meta, put_optional, timestamp
from services.shared.pagination import Page
from services.webhooks.delivery import Claimed
from services.webhooks.subscriptions import DeliveryView


def dump_subscription(
    subscription: WebhookSubscription, api_base: str, secret: str | None = None
) -> dict[str, Any]:
    url = f"{api_base}/webhooks/{subscription.id}"
    data: dict[str, Any] = {
        "id": str(subscription.id),
        "url": subscription.url,
        "events": list(subscription.events),
        "active": subscription.active,
        "ownerId": str(subscription.owner_id),
        "createdAt": timestamp(subscription.created_at),
        "links": {"self": url, "deliveries": f"{url}/deliveries"},
    }
    put_optional(data, "description", subscription.description)
    put_optional(data, "secret", secret)
    return data


def _attempt(attempt: WebhookAttempt) -> dict[str, Any]:
    data: dict[str, Any] = {
        "number": attempt.number,
        "attemptedAt": timestamp(attempt.attempted_at),
        "durationMs": attempt.duration_ms,
    }
    put_optional(data, "statusCode", attempt.status_code)
    put_optional(data, "error", attempt.error)
    return data


def dump_delivery(view: DeliveryView) -> dict[str, Any]:
    delivery = view.delivery
    data: dict[str, Any] = {
        "id": str(delivery.id),
        "eventId": str(delivery.event_id),
        "eventType": view.event_type,
        "status": delivery.status,
        "createdAt": timestamp(delivery.created_at),
        "attempts": [_attempt(a) for a in view.attempts],
    }
    if delivery.status == DeliveryStatus.PENDING:
        data["nextAttemptAt"] = timestamp(delivery.next_attempt_at)
    if delivery.delivered_at is not None:
        data["deliveredAt"] = timestamp(delivery.delivered_at)
    return data


def dump_subscriptions(
    page: Page[WebhookSubscription], api_base: str, params: dict[str, Any]
) -> dict[str, Any]:
    return {
        "data": [dump_subscription(s, api_base) for s in page.items],
        "pagination": page_meta(page),
        "links": collection_links(page, api_base, "/webhooks", params),
    }


def dump_deliveries(
    page: Page[DeliveryView], api_base: str, path: str, params: dict[str, Any]
) -> dict[str, Any]:
    return {
        "data": [dump_delivery(d) for d in page.items],
        "pagination": page_meta(page),
        "links": collection_links(page, api_base, path, params),
    }


def dump_envelope(delivery: Claimed) -> dict[str, Any]:
    """What a webhook or callback POSTs: the reference's envelope around the event's data."""
    return {
        "eventId": str(delivery.event_id),
        "eventType": delivery.event_type,
        "timestamp": timestamp(delivery.occurred_at),
        "data": delivery.data,
    }
