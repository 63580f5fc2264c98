"""The built-in, deterministic test processor (no network). Outcomes depend only on the last four
digits of the card or account number, as documented in spec/openapi.yaml (Pay Order):

- ``0002`` → declined (``card_declined``), ``9995`` → declined (``insufficient_funds``)
- ``0119`` → processor error (nothing charged; the order stays PLACED and can be retried)
- anything else → succeeds, e.g. 4242 4242 4242 4242 or IBAN DE89 3704 0044 0532 0130 00
"""

from __future__ import annotations

import hashlib

from services.orders.processor import (
    ChargeRequest,
    ChargeResult,
    ProcessorUnavailable,
    RefundRequest,
)

DECLINES = {
    "0002": ("card_declined", "The payment source was declined."),
    "9995": ("insufficient_funds", "The payment source has insufficient funds."),
}
PROCESSOR_ERROR_LAST4 = "0119"


class TestProcessor:
    async def charge(self, request: ChargeRequest) -> ChargeResult:
        if request.last4 == PROCESSOR_ERROR_LAST4:
            raise ProcessorUnavailable("test processor: simulated processing error")
        reference = "tp_" + hashlib.sha256(request.payment_id.encode()).hexdigest()[:24]
        if request.last4 in DECLINES:
            code, message = DECLINES[request.last4]
            return ChargeResult(False, reference, code, message)
        return ChargeResult(True, reference)

    async def refund(self, request: RefundRequest) -> str:
        return "tr_" + hashlib.sha256(("refund:" + request.payment_id).encode()).hexdigest()[:24]
