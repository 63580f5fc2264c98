"""The order use cases as one service, built once in the composition root with its processor
and hold time. Each method is a whole use case: Cancel Order cancels *and* refunds."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import timedelta

from models.database import Database
from services.orders import orders, payments
from services.orders.orders import (
    CANCELLED,
    DEFAULT_GUEST_HOLD,
    DEFAULT_HOLD,
    DEFAULT_MAX_UNPAID,
    HoldPolicy,
    NewOrder,
    OrderAccess,
    OrderView,
)
from services.orders.payments import PaidOrder, PaymentInput
from services.orders.processor import PaymentProcessor
from services.shared.audit import AuditAction
from services.shared.errors import AuthenticationFailed, TooManyAttempts
from services.shared.pagination import Page, PageRequest
from services.shared.principal import (
    Principal,
    address_key,
    check_optional_scope,
    client_key,
)
from services.shared.ratelimit import RateLimiter

ORDER_BUDGET = "orders"
"""The named budget (services/shared/ratelimit.py) that Place Order counts against, per client
address and, with a token, per account as well, over every protocol, on top of the general rate
limit."""


class OrderService:
    def __init__(
        self,
        db: Database,
        processor: PaymentProcessor,
        hold: timedelta = DEFAULT_HOLD,
        receipt_base: str = "",
        *,
        guest_hold: timedelta = DEFAULT_GUEST_HOLD,
        max_unpaid: int = DEFAULT_MAX_UNPAID,
        rehold: timedelta | None = None,
        budget: RateLimiter | None = None,
        client_secret: bytes = b"",
    ) -> None:
        """``receipt_base``: the API base of the links inside event payloads (the receipt link
        in ``payment.succeeded``): PETSTORE_PUBLIC_URL's, or the bare API prefix (a relative
        link); never the request's Host, which a caller chooses. ``max_unpaid``: unpaid orders one
        client may hold (0: no cap). ``rehold``: how long a client whose unpaid hold on a pet
        lapsed or was cancelled by it waits to hold that pet again (default: twice ``hold``;
        0: none). ``budget``: counts Place Order per client address and per account against its
        ``ORDER_BUDGET``. ``client_secret``: keys the hash under which a
        guest's address is kept."""
        self.db = db
        self.processor = processor
        self.hold = hold
        rehold = 2 * hold if rehold is None else rehold
        self.policy = HoldPolicy(hold, guest_hold, max_unpaid, rehold)
        self.receipt_base = receipt_base
        self.budget = budget
        self.client_secret = client_secret

    async def create(
        self, principal: Principal, order: NewOrder, address: str | None = None
    ) -> OrderView:
        """Place Order: reserve the pet. ``address``: the client's address (auth.principals.
        client_address), which identifies a guest for its budget and its cap on unpaid orders.
        Raises TooManyAttempts (the client's order budget), UnpaidOrderLimit, RecentlyHeld,
        InvalidInput, Conflict, Forbidden."""
        check_optional_scope(principal, "write:orders")
        if self.budget is not None:
            decision = await self.budget.hit(order_budget_keys(principal, address), ORDER_BUDGET)
            if decision is not None and decision.exceeded:
                raise TooManyAttempts(
                    decision.reset,
                    f"At most {decision.limit} orders a minute; "
                    f"try again in {decision.reset} seconds.",
                )
        # Who the client is by address (a keyed hash, never the address): a guest's cap on unpaid
        # orders, and everyone's wait before re-holding a pet.
        mac = hmac.new(self.client_secret, address_key(address).encode(), hashlib.sha256)
        guest_client = mac.hexdigest()[:32]
        return await orders.create_order(
            self.db, principal, order.pet_id, self.policy, guest_client
        )

    async def get(self, access: OrderAccess, order_id: uuid.UUID) -> OrderView:
        check_access(access, "read:orders")
        return await orders.get_order(self.db, access, order_id)

    async def cancel(
        self,
        access: OrderAccess,
        order_id: uuid.UUID,
        reason: str | None = None,
        audit_as: AuditAction | None = None,
    ) -> OrderView:
        """Cancel Order (and the Admin API's Force Cancel Order, with staff's ``reason``): the
        cancellation, then the refund of a voided payment right away (if the processor is down,
        the housekeeping job refunds it later)."""
        check_access(access, "write:orders")
        view = await orders.cancel_order(self.db, access, order_id, reason, audit_as)
        await payments.refund_owed(
            self.db, self.processor, access.principal.tenant, order_id, access.principal
        )
        return view

    async def advance(self, principal: Principal, order_id: uuid.UUID, status: str) -> OrderView:
        """Update Order Status (staff); a cancellation refunds like Cancel Order."""
        view = await orders.advance_order(self.db, principal, order_id, status)
        if view.order.status == CANCELLED:
            await payments.refund_owed(
                self.db, self.processor, principal.tenant, order_id, principal
            )
        return view

    async def pay(
        self,
        access: OrderAccess,
        order_id: uuid.UUID,
        payment: PaymentInput,
    ) -> PaidOrder:
        check_access(access, "write:orders")
        return await payments.pay_order(
            self.db, self.processor, access, order_id, payment, self.receipt_base
        )

    async def housekeeping(self) -> None:
        """System job: settle interrupted payments, pay refunds still owed, cancel unpaid
        orders past their hold, forget guests' addresses once their re-hold cooldown is over."""
        await payments.reconcile_stale(self.db, self.processor, self.receipt_base)
        await payments.refund_owed(self.db, self.processor)
        await orders.expire_overdue(self.db)
        await orders.forget_ended_holds(self.db, self.policy.rehold)

    async def mine(self, principal: Principal, paging: PageRequest) -> Page[OrderView]:
        """My Orders (read:orders), newest first."""
        return await orders.list_orders(self.db, principal, paging)


def order_budget_keys(principal: Principal, address: str | None) -> list[str]:
    """Every key Place Order is charged to: the client address always and, with a token, the
    account as well (as auth.principals.client_keys for the general budget), so that accounts
    opened from one address share that address's order budget."""
    address_key = client_key("", None, address)
    if principal.subject is None:
        return [address_key]
    return [client_key(principal.tenant, principal.subject, address), address_key]


def check_access(access: OrderAccess, scope: str) -> None:
    """Order operations are open to guests holding the order's token; a bearer token that is
    sent must carry ``scope``; with neither, the caller is unauthenticated."""
    if not access.principal.is_authenticated and not access.guest_token:
        raise AuthenticationFailed("Send a bearer token, or the order's X-Order-Token.")
    check_optional_scope(access.principal, scope)
