"""Webhook subscriptions, their deliveries, and order callbacks.

Rules: any user may subscribe an https/http endpoint that passes the outbound URL policy
(services/url_guard.py) to ``order.statusChanged`` and ``payment.succeeded``; they receive the
events of their own orders, admins those of every order in the tenant. Subscriptions, their
deliveries and attempts are visible to their owner and to admins; to anyone else they do not
exist. The signing secret is returned once, at creation, and stored sealed (encrypted).

Order callbacks (the Callback Example) are open to whoever can see the order, guests too, so
they have two caps: ``callbacks_per_order`` over the order's life (409) and
``callbacks_per_hour`` per client, counted against the account (if a token is sent) and the
client address alike, refused when either is spent (429 with Retry-After). A callback whose
URL is refused spends the budget too."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from urllib.parse import urlsplit, urlunsplit

import anyio
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models import Order, WebhookAttempt, WebhookDelivery, WebhookEvent, WebhookSubscription
from models.base import utcnow, uuid7
from models.database import Database
from models.enums import DeliveryStatus
from services.orders.orders import OrderAccess, load_visible
from services.orders.service import check_access
from services.shared import audit, events
from services.shared.audit import AuditAction, AuditEntity
from services.shared.errors import Conflict, FieldError, InvalidInput, NotFound, TooManyAttempts
from services.shared.pagination import Page, PageRequest
from services.shared.principal import Principal, client_key, require_scope
from services.shared.secrets import SecretBox
from services.shared.throttle import CounterStore
from services.webhooks import url_guard

MAX_SUBSCRIPTIONS_PER_USER = 20
CALLBACKS_PER_ORDER = 5
CALLBACKS_PER_HOUR = 20
HOUR = 3600


@dataclass(frozen=True)
class UrlPolicy:
    """Where deliveries may go (services/webhooks/url_guard.py)."""

    allow_loopback: bool = False
    ports: frozenset[int] = url_guard.DEFAULT_PORTS


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class NewSubscription:
    subscription: WebhookSubscription
    secret: str


@dataclass(frozen=True)
class DeliveryView:
    delivery: WebhookDelivery
    event_type: str
    attempts: list[WebhookAttempt] = field(default_factory=list)


DNS_TIMEOUT = 2.0
"""Seconds a registration-time URL check may take; past it, the URL is refused (the same
refusal as any other)."""
DNS_THREADS = 4
_dns_pool = ThreadPoolExecutor(max_workers=DNS_THREADS, thread_name_prefix="url-check")
"""Registration-time URL checks run on their own few threads, never anyio's shared pool: a
lookup that hangs past its timeout keeps one of these busy (a thread cannot be cancelled), so
hanging names can hold at most DNS_THREADS threads, and the checks queued behind them time
out into refusals."""


async def _check_url(url: str, name: str, policy: UrlPolicy) -> None:
    check = partial(
        url_guard.check, url, name, allow_loopback=policy.allow_loopback, ports=policy.ports
    )
    future = asyncio.wrap_future(_dns_pool.submit(check))
    try:
        with anyio.fail_after(DNS_TIMEOUT):
            await future
    except TimeoutError as exc:
        future.cancel()  # dropped if still queued
        url_guard.log.info("outbound URL refused", extra={"field": name, "reason": "timeout"})
        raise InvalidInput([FieldError(name, url_guard.REFUSED, "blocked_url")]) from exc


async def create_subscription(
    db: Database,
    principal: Principal,
    url: str,
    event_types: list[str],
    description: str | None = None,
    *,
    box: SecretBox,
    urls: UrlPolicy | None = None,
) -> NewSubscription:
    """Raises InvalidInput (URL refused), Conflict (too many subscriptions)."""
    await _check_url(url, "url", urls or UrlPolicy())
    owner = principal.subject
    if owner is None:
        raise NotFound("user", "anonymous")
    secret = new_secret()

    def work(session: Session) -> WebhookSubscription:
        count = session.scalar(
            select(func.count())
            .select_from(WebhookSubscription)
            .where(WebhookSubscription.owner_id == owner)
        )
        if (count or 0) >= MAX_SUBSCRIPTIONS_PER_USER:
            raise Conflict(
                f"At most {MAX_SUBSCRIPTIONS_PER_USER} webhook subscriptions per user.",
                field="url",
                code="limit",
            )
        subscription = WebhookSubscription(
            id=uuid7(),
            owner_id=owner,
            url=url,
            events=sorted(set(event_types)),
            secret=box.seal(secret),
            description=description,
            active=True,
            created_at=utcnow(),
        )
        session.add(subscription)
        session.flush()
        audit.record(
            session,
            principal,
            AuditAction.WEBHOOK_SUBSCRIPTION_CREATED,
            AuditEntity.WEBHOOK_SUBSCRIPTION,
            subscription.id,
            after=_audited(subscription),
        )
        return subscription

    subscription = await db.run(principal.tenant, work, write=True)
    return NewSubscription(subscription, secret)


def _visible(session: Session, principal: Principal, sub_id: uuid.UUID) -> WebhookSubscription:
    subscription = session.get(WebhookSubscription, sub_id)
    if subscription is None or not (
        principal.is_admin or subscription.owner_id == principal.subject
    ):
        raise NotFound("webhook", sub_id)
    return subscription


async def list_subscriptions(
    db: Database, principal: Principal, paging: PageRequest
) -> Page[WebhookSubscription]:
    conditions = [] if principal.is_admin else [WebhookSubscription.owner_id == principal.subject]

    def work(session: Session) -> Page[WebhookSubscription]:
        total = session.scalar(
            select(func.count()).select_from(WebhookSubscription).where(*conditions)
        )
        rows = session.scalars(
            select(WebhookSubscription)
            .where(*conditions)
            .order_by(WebhookSubscription.created_at.desc(), WebhookSubscription.id.desc())
            .offset(paging.offset)
            .limit(paging.limit)
        )
        return paging.of_rows(list(rows), total or 0)

    return await db.run(principal.tenant, work)


async def get_subscription(
    db: Database, principal: Principal, sub_id: uuid.UUID
) -> WebhookSubscription:
    return await db.run(principal.tenant, lambda s: _visible(s, principal, sub_id))


async def delete_subscription(db: Database, principal: Principal, sub_id: uuid.UUID) -> None:
    """Its pending deliveries are dropped with it."""

    def work(session: Session) -> None:
        subscription = _visible(session, principal, sub_id)
        before = _audited(subscription)
        session.delete(subscription)
        session.flush()
        audit.record(
            session,
            principal,
            AuditAction.WEBHOOK_SUBSCRIPTION_DELETED,
            AuditEntity.WEBHOOK_SUBSCRIPTION,
            sub_id,
            before=before,
        )

    await db.run(principal.tenant, work, write=True)


def _audited(subscription: WebhookSubscription) -> dict[str, object]:
    """What the audit log keeps of a subscription: never its secret, nor the URL's query or
    user info (which may carry the receiver's own token)."""
    parts = urlsplit(subscription.url)
    host = parts.netloc.rpartition("@")[2]
    return {
        "ownerId": subscription.owner_id,
        "url": urlunsplit((parts.scheme, host, parts.path, "", "")),
        "events": list(subscription.events),
        "active": subscription.active,
    }


def _attempts(
    session: Session, delivery_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[WebhookAttempt]]:
    found: dict[uuid.UUID, list[WebhookAttempt]] = {d: [] for d in delivery_ids}
    if delivery_ids:
        rows = session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(delivery_ids))
            .order_by(WebhookAttempt.number)
        )
        for attempt in rows:
            found[attempt.delivery_id].append(attempt)
    return found


async def list_deliveries(
    db: Database, principal: Principal, sub_id: uuid.UUID, paging: PageRequest
) -> Page[DeliveryView]:
    """Newest first, each with its attempts (status code, error, duration)."""

    def work(session: Session) -> Page[DeliveryView]:
        _visible(session, principal, sub_id)
        where = WebhookDelivery.subscription_id == sub_id
        total = session.scalar(select(func.count()).select_from(WebhookDelivery).where(where))
        rows = session.execute(
            select(WebhookDelivery, WebhookEvent.event_type)
            .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
            .where(where)
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
            .offset(paging.offset)
            .limit(paging.limit)
        ).all()
        attempts = _attempts(session, [d.id for d, _ in rows])
        items = [DeliveryView(d, t, attempts[d.id]) for d, t in rows]
        return paging.of_rows(items, total or 0)

    return await db.run(principal.tenant, work)


async def redeliver(
    db: Database, principal: Principal, sub_id: uuid.UUID, delivery_id: uuid.UUID
) -> DeliveryView:
    """Queue a delivery again now (DEAD or DELIVERED alike), with a fresh attempt budget."""

    def work(session: Session) -> DeliveryView:
        _visible(session, principal, sub_id)
        delivery = session.get(WebhookDelivery, delivery_id, with_for_update=True)
        if delivery is None or delivery.subscription_id != sub_id:
            raise NotFound("delivery", delivery_id)
        if delivery.status == DeliveryStatus.DELIVERING:
            raise Conflict("The delivery is being attempted right now.", "status", "invalid_state")
        delivery.status = DeliveryStatus.PENDING
        delivery.attempts = 0
        delivery.next_attempt_at = utcnow()
        event = session.get(WebhookEvent, delivery.event_id)
        event_type = event.event_type if event else ""
        return DeliveryView(delivery, event_type, _attempts(session, [delivery.id])[delivery.id])

    return await db.run(principal.tenant, work, write=True)


@dataclass(frozen=True)
class CallbackRequest:
    url: str
    amount: str
    currency: str
    timestamp: str


@dataclass(frozen=True)
class QueuedCallback:
    delivery_id: uuid.UUID
    secret: str


@dataclass(frozen=True)
class CallbackLimits:
    per_order: int = CALLBACKS_PER_ORDER
    """Callbacks registered over an order's life (0: no cap)."""
    per_hour: int = CALLBACKS_PER_HOUR
    """Callbacks per client (account, or a guest's address) per hour (0: no cap)."""


def callback_keys(principal: Principal, address: str | None) -> list[str]:
    """Every hourly callback budget a request spends: the account's (when a token is sent) and
    the client address's (always), so accounts opened from one address share its budget."""
    keys = [client_key(principal.tenant, principal.subject, address), client_key("", None, address)]
    return ["cb:" + k for k in dict.fromkeys(keys)]


def _precheck(session: Session, access: OrderAccess, order_id: uuid.UUID, per_order: int) -> None:
    order = load_visible(session, access, order_id)
    if 0 < per_order <= order.callbacks_registered:
        raise Conflict(
            f"This order already has the {per_order} callbacks an order may register.",
            field="callbackUrl",
            code="limit",
        )


async def enqueue_order_callback(
    db: Database, access: OrderAccess, order_id: uuid.UUID, request: CallbackRequest,
    *, box: SecretBox, urls: UrlPolicy | None = None,
    limits: CallbackLimits | None = None,
) -> QueuedCallback:  # fmt: skip
    """The Callback Example: queue an ``order.processed`` callback to the caller's URL, signed
    with a secret returned once. Raises NotFound, InvalidInput (URL refused), Conflict (the
    order's callbacks are used up)."""
    await _check_url(request.url, "callbackUrl", urls or UrlPolicy())
    limits = limits or CallbackLimits()
    secret = new_secret()

    def work(session: Session) -> QueuedCallback:
        order = load_visible(session, access, order_id)
        if limits.per_order > 0:
            # One conditional UPDATE: concurrent requests cannot both take the last one.
            taken = session.execute(
                update(Order)
                .where(Order.id == order.id, Order.callbacks_registered < limits.per_order)
                .values(callbacks_registered=Order.callbacks_registered + 1)
                .execution_options(synchronize_session=False)
            )
            if not getattr(taken, "rowcount", 0):
                raise Conflict(
                    f"This order already has the {limits.per_order} callbacks an order may "
                    "register.",
                    field="callbackUrl",
                    code="limit",
                )
        data = {
            "order": events.order_snapshot(order),
            "amount": request.amount,
            "currency": request.currency,
            "requestTimestamp": request.timestamp,
            "processedAt": events.rfc3339(utcnow()),
        }
        delivery = events.enqueue_callback(session, order, request.url, box.seal(secret), data)
        return QueuedCallback(delivery.id, secret)

    return await db.run(access.principal.tenant, work, write=True)


class WebhookService:
    """Subscriptions, deliveries and order callbacks, built once with the outbound URL policy."""

    def __init__(
        self,
        db: Database,
        box: SecretBox,
        counters: CounterStore,
        *,
        urls: UrlPolicy | None = None,
        callbacks: CallbackLimits | None = None,
    ) -> None:
        self.db = db
        self.box = box
        self.counters = counters
        self.urls = urls or UrlPolicy()
        self.callbacks = callbacks or CallbackLimits()

    async def create(
        self, principal: Principal, url: str, event_types: list[str], description: str | None
    ) -> NewSubscription:
        require_scope(principal, "write:orders")
        return await create_subscription(
            self.db, principal, url, event_types, description, box=self.box, urls=self.urls
        )

    async def list(self, principal: Principal, paging: PageRequest) -> Page[WebhookSubscription]:
        require_scope(principal, "read:orders")
        return await list_subscriptions(self.db, principal, paging)

    async def get(self, principal: Principal, sub_id: uuid.UUID) -> WebhookSubscription:
        require_scope(principal, "read:orders")
        return await get_subscription(self.db, principal, sub_id)

    async def delete(self, principal: Principal, sub_id: uuid.UUID) -> None:
        require_scope(principal, "write:orders")
        await delete_subscription(self.db, principal, sub_id)

    async def deliveries(
        self, principal: Principal, sub_id: uuid.UUID, paging: PageRequest
    ) -> Page[DeliveryView]:
        require_scope(principal, "read:orders")
        return await list_deliveries(self.db, principal, sub_id, paging)

    async def redeliver(
        self, principal: Principal, sub_id: uuid.UUID, delivery_id: uuid.UUID
    ) -> DeliveryView:
        require_scope(principal, "write:orders")
        return await redeliver(self.db, principal, sub_id, delivery_id)

    async def callback(
        self,
        access: OrderAccess,
        order_id: uuid.UUID,
        request: CallbackRequest,
        address: str | None = None,
    ) -> QueuedCallback:
        """``address``: the client's address, whose hourly budget a guest spends. Raises
        TooManyAttempts (hourly budget spent) besides enqueue_order_callback's errors."""
        check_access(access, "write:orders")
        per_hour = self.callbacks.per_hour
        keys = callback_keys(access.principal, address) if per_hour > 0 else []
        if keys:
            counted = await asyncio.gather(*(self.counters.increment(k, HOUR) for k in keys))
            spent = [reset for count, reset in counted if count > per_hour]
            if spent:
                raise TooManyAttempts(
                    retry_after=max(max(spent), 1),
                    detail=f"At most {per_hour} order callbacks per hour per client; "
                    "try again later.",
                )
        try:
            # What costs nothing is refused before the URL check: an unknown (or someone
            # else's) order, one whose callbacks are used up. Those give the budget back.
            await self.db.run(
                access.principal.tenant,
                lambda s: _precheck(s, access, order_id, self.callbacks.per_order),
                write=True,
            )
        except (NotFound, Conflict):
            for key in keys:
                await self.counters.decrement(key)
            raise
        # From here on the URL is checked (a DNS lookup): a refusal keeps its charge, so
        # refused URLs are no free resolution probes.
        return await enqueue_order_callback(
            self.db, access, order_id, request,
            box=self.box, urls=self.urls, limits=self.callbacks,
        )  # fmt: skip
