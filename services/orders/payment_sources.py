"""Payment sources: validation, brand detection and masking of cards and bank accounts.

Full card numbers, CVCs and full account numbers exist only in memory for the length of one
request: ``public()`` is the only form that is stored, logged or returned."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from models.enums import AccountHolderType
from services.shared.errors import FieldError
from services.shared.rules import Rules

COUNTRY = re.compile(r"[A-Z]{2}")
ADDRESS_COUNTRY = re.compile(r"[A-Za-z]{2}")
ADDRESS_LIMITS = {
    "addressLine1": 200,
    "addressLine2": 200,
    "addressCity": 100,
    "addressState": 100,
    "addressCountry": 2,
    "addressPostCode": 20,
}

CARD_BRANDS: tuple[tuple[str, tuple[tuple[int, int], ...], tuple[int, ...]], ...] = (
    # brand, inclusive prefix ranges (compared on as many leading digits), valid lengths
    ("AMEX", ((34, 34), (37, 37)), (15,)),
    ("VISA", ((4, 4),), (13, 16, 19)),
    ("MASTERCARD", ((51, 55), (2221, 2720)), (16,)),
    ("DISCOVER", ((6011, 6011), (644, 649), (65, 65)), (16, 19)),
    ("JCB", ((3528, 3589),), (16, 19)),
    ("DINERS", ((300, 305), (36, 36), (38, 39)), (14, 16, 19)),
    ("UNIONPAY", ((62, 62),), (16, 17, 18, 19)),
)


def _digits(value: str) -> bool:
    """ASCII digits only: str.isdigit() also takes "²" or "٣", which int() and the checksums
    cannot use."""
    return value.isascii() and value.isdigit()


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def card_brand(number: str) -> str | None:
    for brand, ranges, lengths in CARD_BRANDS:
        for low, high in ranges:
            width = len(str(low))
            if low <= int(number[:width]) <= high and len(number) in lengths:
                return brand
    return None


def mask(value: str, keep: int = 4, lead: int = 0) -> str:
    """At most the first ``lead`` and last ``keep`` characters shown, and never more than half:
    a short account number keeps only what ``last4`` would show anyway, masked to half."""
    shown = min(keep, len(value) // 2)
    lead = min(lead, max(len(value) // 2 - shown, 0))
    return value[:lead] + "*" * (len(value) - shown - lead) + (value[-shown:] if shown else "")


@dataclass(frozen=True)
class Card:
    number: str = field(repr=False)
    cvc: str = field(repr=False)
    exp_month: int
    exp_year: int
    name: str | None = None
    address: dict[str, str] = field(default_factory=dict)

    kind = "card"

    def problems(self, today: date) -> list[FieldError]:
        rules = Rules("source.")
        brand = None
        if not isinstance(self.number, str):
            rules.fail("number", "must be a string", "type")
        elif not _digits(self.number) or not 12 <= len(self.number) <= 19:
            rules.fail("number", "must be 12 to 19 digits", "format")
        elif not luhn_ok(self.number):
            rules.fail("number", "fails the Luhn check", "luhn")
        else:
            brand = card_brand(self.number)
            if brand is None:
                rules.fail("number", "is not a card brand we accept", "brand")
        want = 4 if brand == "AMEX" else 3
        if not isinstance(self.cvc, str) or not _digits(self.cvc) or len(self.cvc) != want:
            rules.fail("cvc", f"must be {want} digits", "format")
        month_ok = rules.integer("expMonth", self.exp_month, 1, 12)
        year_ok = rules.integer("expYear", self.exp_year, 2000, 2100)
        if month_ok and year_ok and (self.exp_year, self.exp_month) < (today.year, today.month):
            rules.fail("expYear", "the card has expired", "expired")
        rules.text("name", self.name, max_len=100, optional=True)
        for key in set(self.address) - set(ADDRESS_LIMITS):
            rules.fail(key, "is not a known property", "additionalProperties")
        for key, limit in ADDRESS_LIMITS.items():
            if key == "addressCountry":
                rules.text(key, self.address.get(key), pattern=ADDRESS_COUNTRY, optional=True)
            else:
                rules.text(key, self.address.get(key), max_len=limit, optional=True)
        return rules.errors

    @property
    def last4(self) -> str:
        return self.number[-4:]

    def public(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "object": "card",
            "number": "*" * 12 + self.last4,
            "last4": self.last4,
            "brand": card_brand(self.number),
            "expMonth": self.exp_month,
            "expYear": self.exp_year,
        }
        if self.name:
            data["name"] = self.name
        data.update(self.address)
        return data


IBAN_LENGTHS = {
    "AT": 20, "BE": 16, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "EE": 20, "ES": 24,
    "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IS": 26, "IT": 27,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MT": 31, "NL": 18, "NO": 15, "PL": 28, "PT": 25,
    "RO": 24, "SE": 24, "SI": 19, "SK": 24,
}  # fmt: skip
"""SEPA countries we accept, with their IBAN length (ISO 13616 registry)."""


def iban_ok(iban: str) -> bool:
    if len(iban) != IBAN_LENGTHS.get(iban[:2], -1) or not (iban.isascii() and iban.isalnum()):
        return False
    rearranged = iban[4:] + iban[:4]
    digits = "".join(
        str(string.digits.find(c)) if _digits(c) else str(ord(c) - 55) for c in rearranged
    )
    return int(digits) % 97 == 1


def aba_routing_ok(routing: str) -> bool:
    if len(routing) != 9 or not _digits(routing):
        return False
    weights = (3, 7, 1) * 3
    return sum(int(d) * w for d, w in zip(routing, weights, strict=True)) % 10 == 0


@dataclass(frozen=True)
class BankAccount:
    """A SEPA account by ``iban``, or a US account by ``routing_number`` + ``account_number``."""

    account_holder_name: str
    country: str
    account_holder_type: str = AccountHolderType.INDIVIDUAL
    iban: str | None = field(default=None, repr=False)
    routing_number: str | None = None
    account_number: str | None = field(default=None, repr=False)

    kind = "bank_account"

    def problems(self, today: date) -> list[FieldError]:
        rules = Rules("source.")
        rules.text("accountHolderName", self.account_holder_name, min_len=1, max_len=100)
        rules.choice("accountHolderType", self.account_holder_type, AccountHolderType)
        rules.text("country", self.country, pattern=COUNTRY)
        return rules.errors + self._account_problems()

    def _account_problems(self) -> list[FieldError]:
        errors: list[FieldError] = []
        if self.iban is not None:
            if self.routing_number or self.account_number:
                errors.append(
                    FieldError("source.iban", "send an IBAN or a US account, not both", "exclusive")
                )
            elif not iban_ok(self.iban):
                errors.append(FieldError("source.iban", "is not a valid IBAN", "checksum"))
            elif self.iban[:2] != self.country:
                errors.append(
                    FieldError("source.country", "must be the IBAN's country", "mismatch")
                )
        elif self.routing_number is not None and self.account_number is not None:
            if self.country != "US":
                errors.append(
                    FieldError("source.country", "routing numbers are for US accounts", "mismatch")
                )
            if not aba_routing_ok(self.routing_number):
                errors.append(
                    FieldError(
                        "source.routingNumber", "is not a valid ABA routing number", "checksum"
                    )
                )
            if not (_digits(self.account_number) and 4 <= len(self.account_number) <= 17):
                errors.append(
                    FieldError("source.accountNumber", "must be 4 to 17 digits", "format")
                )
        else:
            errors.append(
                FieldError(
                    "source.iban",
                    "send either iban, or routingNumber and accountNumber",
                    "required",
                )
            )

        return errors

    @property
    def last4(self) -> str:
        return (self.iban or self.account_number or "")[-4:]

    def public(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "object": "bank_account",
            "accountHolderName": self.account_holder_name,
            "accountHolderType": self.account_holder_type,
            "country": self.country,
            "last4": self.last4,
        }
        if self.iban:
            data["iban"] = mask(self.iban, keep=4, lead=4)
        else:
            data["routingNumber"] = self.routing_number
            data["accountNumber"] = mask(self.account_number or "")
        return data


PaymentSource = Card | BankAccount
