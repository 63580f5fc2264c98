"""The payment processor port. Services charge and refund through this interface; adapters live
in infra/ (the built-in deterministic test processor) and a real provider can be plugged in.

Contract for adapters:
- ``charge`` is idempotent by ``payment_id`` (send it as the provider's idempotency key): asking
  again for the same payment returns the first outcome and never charges twice. Reconciliation
  of interrupted payments relies on this.
- Raise ``ProcessorUnavailable`` only when the provider certainly took nothing (refused the
  connection, answered that nothing happened). When the outcome is unknown (a timeout after the
  request was sent), raise anything else: the payment stays PROCESSING and is reconciled later.
- ``refund`` is idempotent by ``payment_id`` too; it reverses a succeeded charge in full.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True)
class ChargeRequest:
    payment_id: str
    """Sent as the provider's idempotency key: a retried charge is never taken twice."""
    amount: Decimal
    currency: str
    source_kind: str
    last4: str
    brand: str | None


@dataclass(frozen=True)
class ChargeResult:
    succeeded: bool
    reference: str
    decline_code: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class RefundRequest:
    payment_id: str
    reference: str
    amount: Decimal
    currency: str


class ProcessorUnavailable(Exception):
    """The processor failed or could not be reached, and certainly took nothing."""


class PaymentProcessor(Protocol):
    async def charge(self, request: ChargeRequest) -> ChargeResult: ...

    async def refund(self, request: RefundRequest) -> str:
        """Reverse a succeeded charge; the refund's reference. Raises ProcessorUnavailable."""
        ...
