"""The response body validator (web/validators.py): every body is checked against its schema; a
body byte-for-byte equal to one that passed the same schema is not parsed again, and nothing that
failed is ever remembered as passed."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from connexion.exceptions import NonConformingResponseBody

from web import validators
from web.validators import FastJSONResponseBodyValidator

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": {"type": "string", "minLength": 1}},
}


def check(schema: dict[str, Any], body: bytes) -> Any:
    """What the validator does with one response body: parse, then validate (raises if bad)."""
    validator = FastJSONResponseBodyValidator({"type": "http"}, schema=schema, encoding="utf-8")
    parsed = validator._parse(chunk for chunk in [body])
    validator._validate(parsed)
    return parsed


def test_a_body_that_passed_is_not_parsed_again() -> None:
    body = orjson.dumps({"name": "Rex"})
    assert check(SCHEMA, body) == {"name": "Rex"}  # parsed and checked
    assert check(SCHEMA, bytes(body)) is validators._Verified  # equal bytes: looked up


def test_a_failing_body_fails_every_time() -> None:
    bad = orjson.dumps({"name": ""})
    for _ in range(3):
        with pytest.raises(NonConformingResponseBody, match="name"):
            check(SCHEMA, bad)


def test_another_schema_checks_the_same_bytes_afresh() -> None:
    body = orjson.dumps({"name": "Tom", "age": 3})
    check(SCHEMA, body)
    stricter = {**SCHEMA, "additionalProperties": False}
    with pytest.raises(NonConformingResponseBody):
        check(stricter, body)


def test_large_bodies_are_always_parsed_and_the_memory_is_bounded() -> None:
    large = orjson.dumps({"name": "x" * validators.VERIFIED_MAX_BYTES})
    check(SCHEMA, large)
    assert check(SCHEMA, large) == {"name": "x" * validators.VERIFIED_MAX_BYTES}
    for n in range(validators.VERIFIED_ENTRIES + 50):
        check(SCHEMA, orjson.dumps({"name": f"pet {n}"}))
    assert len(validators._verified) == validators.VERIFIED_ENTRIES
