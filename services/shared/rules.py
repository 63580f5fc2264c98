"""Value rules for commands: one checker that collects every bad field before refusing.

A command dataclass checks its own fields in ``__post_init__`` with a ``Rules`` and calls
``done()``, which raises InvalidInput naming every bad field at once (wire names: camelCase,
nested as ``source.number``). spec/openapi.yaml states the same limits for clients; the boundary
test (tests/unit/test_domain_rules.py) proves the two agree. Messages never echo the value."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, TypeVar

from services.shared.errors import FieldError, InvalidInput

E = TypeVar("E", bound=StrEnum)

MONEY_MAX = Decimal("99999999.99")
MONEY_TEXT = re.compile(r"^(0|[1-9][0-9]{0,7})(\.[0-9]{1,2})?$")
"""How an amount is written on the wire (#/components/schemas/Money): no sign, no exponent, no
leading zeros, at most two decimals."""


class Rules:
    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.errors: list[FieldError] = []

    def fail(self, field: str, message: str, code: str = "invalid") -> None:
        self.errors.append(FieldError(self.prefix + field, message, code))

    def extend(self, errors: Iterable[FieldError]) -> None:
        self.errors.extend(errors)

    def done(self) -> None:
        if self.errors:
            raise InvalidInput(self.errors)

    # -- one method per kind of value; each returns whether the value passed -----------------

    def text(
        self,
        field: str,
        value: Any,
        *,
        min_len: int = 0,
        max_len: int | None = None,
        pattern: re.Pattern[str] | None = None,
        optional: bool = False,
    ) -> bool:
        if value is None and optional:
            return True
        if not isinstance(value, str):
            self.fail(field, "must be a string", "type")
            return False
        ok = True
        if len(value) < min_len:
            self.fail(field, f"must be at least {min_len} characters", "minLength")
            ok = False
        if max_len is not None and len(value) > max_len:
            self.fail(field, f"must be at most {max_len} characters", "maxLength")
            ok = False
        if "\x00" in value:
            self.fail(field, "must not contain NUL characters", "pattern")
            ok = False
        elif pattern is not None and ok and not pattern.fullmatch(value):
            self.fail(field, "has an invalid format", "pattern")
            ok = False
        return ok

    def integer(
        self, field: str, value: Any, low: int, high: int, *, optional: bool = False
    ) -> bool:
        if value is None and optional:
            return True
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(field, "must be an integer", "type")
            return False
        if value < low:
            self.fail(field, f"must be at least {low}", "minimum")
            return False
        if value > high:
            self.fail(field, f"must be at most {high}", "maximum")
            return False
        return True

    def boolean(self, field: str, value: Any, *, optional: bool = True) -> bool:
        if (value is None and optional) or isinstance(value, bool):
            return True
        self.fail(field, "must be a boolean", "type")
        return False

    def choice(self, field: str, value: Any, enum: type[E], *, optional: bool = False) -> E | None:
        """The enum member for ``value`` (None when refused or absent)."""
        if value is None and optional:
            return None
        try:
            return enum(value)
        except ValueError:
            allowed = ", ".join(m.value for m in enum)
            self.fail(field, f"must be one of {allowed}", "enum")
            return None

    def choices(self, field: str, values: Any, enum: type[E]) -> tuple[E, ...]:
        if not isinstance(values, list | tuple):
            self.fail(field, "must be a list", "type")
            return ()
        members = [self.choice(f"{field}[{i}]", v, enum) for i, v in enumerate(values)]
        return tuple(m for m in members if m is not None)

    def money(self, field: str, value: Any, *, optional: bool = False) -> bool:
        """A non-negative amount with at most two decimal places, up to 99999999.99; written as
        MONEY_TEXT when it comes as text."""
        if value is None and optional:
            return True
        text = value if isinstance(value, str) else None
        if isinstance(value, str):
            try:
                value = Decimal(value)
            except InvalidOperation:
                value = None
        if not isinstance(value, Decimal) or not value.is_finite():
            self.fail(field, "must be a decimal amount", "type")
            return False
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -2:
            self.fail(field, "must have at most two decimal places", "pattern")
            return False
        if value < 0:
            self.fail(field, "must not be negative", "minimum")
            return False
        if value > MONEY_MAX:
            self.fail(field, f"must be at most {MONEY_MAX}", "maximum")
            return False
        if text is not None and not MONEY_TEXT.match(text):
            self.fail(field, "must be written like 75.00 (digits, at most two decimals)", "pattern")
            return False
        return True

    def uuid(self, field: str, value: Any) -> uuid.UUID | None:
        if isinstance(value, uuid.UUID):
            return value
        try:
            return uuid.UUID(str(value))
        except ValueError:
            self.fail(field, "must be a UUID", "format")
            return None

    def object(
        self, field: str, value: Any, allowed: Iterable[str], *, optional: bool = True
    ) -> Mapping[str, Any] | None:
        """A JSON object with only the ``allowed`` keys (their values are the caller's to
        check); None when absent or not an object."""
        if value is None and optional:
            return None
        if not isinstance(value, Mapping):
            self.fail(field, "must be an object", "type")
            return None
        for key in sorted(set(value) - set(allowed)):
            self.fail(f"{field}.{key}", "is not a known property", "additionalProperties")
        return value
