"""Races on real connections: 20 buyers, one pet. Each thread has its own Database (its own
engine and connections), so nothing in-process serializes them: only the database does
(BEGIN IMMEDIATE on SQLite, the pet's row lock and the partial unique index on PostgreSQL)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from infra.payments import TestProcessor
from models import Order, Pet
from models.database import Database
from services.catalogue import pets
from services.orders import orders, payments
from services.orders.payment_sources import Card
from services.orders.processor import ChargeRequest, ChargeResult
from services.orders.service import OrderService
from services.shared.errors import Conflict
from services.shared.principal import ROLE_SCOPES, Principal, anonymous
from settings import Settings
from tests.conftest import run_db

BUYERS = 20


def _race(settings: Settings, work: object) -> list[object]:
    barrier = threading.Barrier(BUYERS)
    results: list[object] = [None] * BUYERS

    def buyer(i: int) -> None:
        async def go() -> object:
            db = Database(settings.database_url)
            try:
                barrier.wait()
                return await work(db)  # type: ignore[operator]
            except Exception as exc:  # noqa: BLE001 - the outcome is what we assert on
                return exc
            finally:
                await db.dispose()

        results[i] = asyncio.run(go())

    threads = [threading.Thread(target=buyer, args=(i,)) for i in range(BUYERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def _new_pet(settings: Settings, tenant: str) -> Pet:
    admin = Principal(uuid.uuid4(), "admin", ROLE_SCOPES["admin"], tenant)
    data = pets.PetData(name="Solo", species="CAT", age_months=12, price=Decimal("80.00"))
    pet: Pet = run_db(settings, lambda db: pets.create_pet(db, admin, data))
    return pet


def _guest_order(
    settings: Settings,
) -> tuple[orders.OrderView, orders.OrderAccess, payments.PaymentInput]:
    """A guest's PLACED order for a new 80.00 USD pet in a fresh tenant, and a card that pays it."""
    tenant = str(uuid.uuid4())
    pet = _new_pet(settings, tenant)
    placed = run_db(settings, lambda db: orders.create_order(db, anonymous(tenant), pet.id))
    access = orders.OrderAccess(anonymous(tenant), placed.guest_token)
    card = Card(number="4242424242424242", cvc="123", exp_month=12, exp_year=2030)
    return placed, access, payments.PaymentInput(Decimal("80.00"), "USD", card)


def test_twenty_concurrent_orders_one_wins(settings: Settings) -> None:
    tenant = str(uuid.uuid4())
    pet = _new_pet(settings, tenant)
    results = _race(settings, lambda db: orders.create_order(db, anonymous(tenant), pet.id))
    won = [r for r in results if isinstance(r, orders.OrderView)]
    lost = [r for r in results if isinstance(r, Conflict)]
    assert len(won) == 1, results
    assert len(lost) == BUYERS - 1, results

    async def check(db: Database) -> tuple[str, int]:
        def work(session: object) -> tuple[str, int]:
            rows = list(session.scalars(select(Order).where(Order.pet_id == pet.id)))  # type: ignore[attr-defined]
            return session.get(Pet, pet.id).status, len(rows)  # type: ignore[attr-defined]

        return await db.run(tenant, work)

    assert run_db(settings, check) == ("PENDING", 1)


def test_twenty_concurrent_payments_charge_once(settings: Settings) -> None:
    placed, access, payment = _guest_order(settings)

    class Processor(TestProcessor):
        """The built-in test processor, slowed down (a wider race window) and counting."""

        calls = 0

        async def charge(self, request: ChargeRequest) -> ChargeResult:
            Processor.calls += 1
            await asyncio.sleep(0.05)
            return await super().charge(request)

    results = _race(
        settings,
        lambda db: payments.pay_order(db, Processor(), access, placed.order.id, payment),
    )
    paid = [r for r in results if isinstance(r, payments.PaidOrder)]
    assert len(paid) == 1, results
    assert all(isinstance(r, Conflict) for r in results if r not in paid), results
    assert Processor.calls == 1


def test_an_interrupted_payment_is_settled_by_reconciliation(settings: Settings) -> None:
    """The processor took the charge but the request died before recording it: the order is
    locked (PROCESSING), a retry is refused, and the reconciliation job settles it once."""
    from services.orders.processor import ProcessorUnavailable

    placed, access, payment = _guest_order(settings)

    class Crashing(TestProcessor):
        async def charge(self, request: ChargeRequest) -> ChargeResult:
            await super().charge(request)
            raise RuntimeError("connection reset after the charge")

    class Down(TestProcessor):
        async def charge(self, request: ChargeRequest) -> ChargeResult:
            raise ProcessorUnavailable("still down")

    async def scenario(db: Database) -> None:
        with pytest.raises(RuntimeError):
            await payments.pay_order(db, Crashing(), access, placed.order.id, payment)
        with pytest.raises(Conflict):
            await payments.pay_order(db, TestProcessor(), access, placed.order.id, payment)
        with pytest.raises(Conflict):  # cannot be cancelled while the outcome is unknown
            await orders.cancel_order(db, access, placed.order.id)
        assert await payments.reconcile_stale(db, Down(), "/v1", timedelta(0)) == 0
        assert await payments.reconcile_stale(db, TestProcessor(), "/v1", timedelta(0)) == 1
        view = await orders.get_order(db, access, placed.order.id)
        assert view.order.status == "APPROVED"
        assert view.payment is not None
        assert view.payment.status == "SUCCEEDED"
        assert await payments.reconcile_stale(db, TestProcessor(), "/v1", timedelta(0)) == 0

    run_db(settings, scenario)


def test_a_refund_owed_during_an_outage_is_paid_by_the_housekeeping_job(
    settings: Settings,
) -> None:
    from services.orders.processor import ProcessorUnavailable, RefundRequest

    placed, access, payment = _guest_order(settings)

    class RefundsDown(TestProcessor):
        async def refund(self, request: RefundRequest) -> str:
            raise ProcessorUnavailable("refunds are down")

    class Counting(TestProcessor):
        refunds: list[str] = []

        async def refund(self, request: RefundRequest) -> str:
            Counting.refunds.append(request.payment_id)
            return await super().refund(request)

    async def scenario(db: Database) -> None:
        paid = await payments.pay_order(db, TestProcessor(), access, placed.order.id, payment)
        await OrderService(db, RefundsDown()).cancel(access, placed.order.id)
        view = await orders.get_order(db, access, placed.order.id)
        assert view.order.status == "CANCELLED"
        assert view.payment is not None
        assert (view.payment.status, view.payment.refund_reference) == ("CANCELLED", None)
        assert await payments.refund_owed(db, Counting()) >= 1
        assert await payments.refund_owed(db, Counting()) == 0  # once only
        assert Counting.refunds.count(str(paid.payment.id)) == 1

    run_db(settings, scenario)
