"""Scopes are checked by the services, so every protocol refuses alike: a use case that needs a
token refuses none (AuthenticationFailed) and one without its scope (Forbidden) before it
touches any data."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from infra.counters import MemoryCounterStore
from infra.payments import TestProcessor
from models.database import Database
from services.accounts.roles import RoleLookup
from services.accounts.users import UserData, UserService
from services.catalogue.inventory import InventoryService
from services.catalogue.pets import PetData, PetService
from services.orders.orders import NewOrder, OrderAccess
from services.orders.payment_sources import Card
from services.orders.payments import PaymentInput
from services.orders.service import OrderService
from services.shared import errors
from services.shared.pagination import PageRequest
from services.shared.principal import ROLE_SCOPES, Principal, anonymous
from services.shared.secrets import SecretBox
from services.webhooks.subscriptions import CallbackRequest, WebhookService
from settings import Settings
from tests.conftest import run_db

ID = uuid.uuid4()
PET = PetData(name="Rex", species="DOG", age_months=12, price=Decimal("10.00"))
PROFILE = UserData(username="someone", email="someone@example.com", first_name="A", last_name="B")
PAYMENT = PaymentInput(
    Decimal("10.00"), "USD", Card("4242424242424242", "123", 12, date.today().year + 1)
)
CALLBACK = CallbackRequest("https://example.com/cb", "10.00", "USD", "2026-01-01T00:00:00Z")

Call = Callable[[dict[str, Any], Principal], Awaitable[Any]]

CASES: dict[str, tuple[str, Call]] = {
    "inventory.get": ("read:pets", lambda s, p: s["inventory"].get(p)),
    "users.get": ("read:user", lambda s, p: s["users"].get(p, ID)),
    "users.me": ("read:user", lambda s, p: s["users"].me(p)),
    "users.update": ("write:user", lambda s, p: s["users"].update(p, ID, PROFILE)),
    "users.delete": ("write:user", lambda s, p: s["users"].delete(p, ID)),
    "pets.create": ("write:pets", lambda s, p: s["pets"].create(p, PET)),
    "pets.replace": ("write:pets", lambda s, p: s["pets"].replace(p, ID, PET)),
    "pets.delete": ("write:pets", lambda s, p: s["pets"].delete(p, ID)),
    "orders.mine": ("read:orders", lambda s, p: s["orders"].mine(p, PageRequest())),
    "orders.get": ("read:orders", lambda s, p: s["orders"].get(OrderAccess(p), ID)),
    "orders.cancel": ("write:orders", lambda s, p: s["orders"].cancel(OrderAccess(p), ID)),
    "orders.pay": ("write:orders", lambda s, p: s["orders"].pay(OrderAccess(p), ID, PAYMENT)),
    "webhooks.create": (
        "write:orders",
        lambda s, p: s["webhooks"].create(p, "https://example.com/h", ["payment.succeeded"], None),
    ),
    "webhooks.list": ("read:orders", lambda s, p: s["webhooks"].list(p, PageRequest())),
    "webhooks.get": ("read:orders", lambda s, p: s["webhooks"].get(p, ID)),
    "webhooks.delete": ("write:orders", lambda s, p: s["webhooks"].delete(p, ID)),
    "webhooks.deliveries": (
        "read:orders",
        lambda s, p: s["webhooks"].deliveries(p, ID, PageRequest()),
    ),
    "webhooks.redeliver": ("write:orders", lambda s, p: s["webhooks"].redeliver(p, ID, ID)),
    "webhooks.callback": (
        "write:orders",
        lambda s, p: s["webhooks"].callback(OrderAccess(p), ID, CALLBACK),
    ),
}
GUEST_OPEN: dict[str, Call] = {
    "orders.get": lambda s, p: s["orders"].get(OrderAccess(p, "guest-token"), ID),
    "orders.cancel": lambda s, p: s["orders"].cancel(OrderAccess(p, "guest-token"), ID),
    "orders.pay": lambda s, p: s["orders"].pay(OrderAccess(p, "guest-token"), ID, PAYMENT),
    "webhooks.callback": lambda s, p: s["webhooks"].callback(
        OrderAccess(p, "guest-token"), ID, CALLBACK
    ),
    "orders.create": lambda s, p: s["orders"].create(p, NewOrder(ID)),
}
"""Open to guests (with the order's token, or placing an order); a bearer token that is sent
needs the scope all the same."""


def _services(db: Database) -> dict[str, Any]:
    roles = RoleLookup(db, 0)
    return {
        "inventory": InventoryService(db),
        "users": UserService(db, throttle=None, roles=roles, tokens=None),  # type: ignore[arg-type]
        "pets": PetService(db),
        "orders": OrderService(db, TestProcessor()),
        "webhooks": WebhookService(db, SecretBox("test-key"), MemoryCounterStore()),
    }


def _outcome(
    settings: Settings, case: str, who: Principal, call: Call | None = None
) -> type[BaseException] | None:
    async def go(db: Database) -> type[BaseException] | None:
        try:
            await (call or CASES[case][1])(_services(db), who)
        except errors.DomainError as exc:
            return type(exc)
        return None

    result: type[BaseException] | None = run_db(settings, go)
    return result


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_token_without_the_scope_is_refused_by_the_service(settings: Settings, case: str) -> None:
    scope = CASES[case][0]
    role = "admin" if scope == "write:pets" else "user"
    lacking = Principal(uuid.uuid4(), role, ROLE_SCOPES[role] - {scope}, "scopes")
    assert _outcome(settings, case, lacking) is errors.Forbidden


@pytest.mark.parametrize("case", sorted(CASES))
def test_no_token_is_unauthenticated(settings: Settings, case: str) -> None:
    assert _outcome(settings, case, anonymous("scopes")) is errors.AuthenticationFailed


@pytest.mark.parametrize("case", sorted(CASES))
def test_with_the_scope_the_service_gets_past_the_check(settings: Settings, case: str) -> None:
    """Same call with the scope: whatever it answers (a missing id is NotFound), not a refusal
    of the caller."""
    scope = CASES[case][0]
    role = "admin" if scope == "write:pets" else "user"
    allowed = Principal(uuid.uuid4(), role, ROLE_SCOPES[role], "scopes")
    assert _outcome(settings, case, allowed) not in (errors.Forbidden, errors.AuthenticationFailed)


@pytest.mark.parametrize("case", sorted(GUEST_OPEN))
def test_guests_get_past_the_check_and_a_sent_token_still_needs_the_scope(
    settings: Settings, case: str
) -> None:
    call = GUEST_OPEN[case]
    guest = _outcome(settings, case, anonymous("scopes"), call)
    assert guest not in (errors.Forbidden, errors.AuthenticationFailed)
    lacking = Principal(uuid.uuid4(), "user", ROLE_SCOPES["user"] - {"write:orders", "read:orders"},
                        "scopes")  # fmt: skip
    assert _outcome(settings, case, lacking, call) is errors.Forbidden
