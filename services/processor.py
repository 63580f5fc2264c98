"""The payment processor port. Services charge through this interface; adapters live in infra/
(the built-in deterministic test processor) and a real provider can be plugged in later."""

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


class ProcessorUnavailable(Exception):
    """The processor failed or timed out; nothing was charged."""


class PaymentProcessor(Protocol):
    async def charge(self, request: ChargeRequest) -> ChargeResult: ...
