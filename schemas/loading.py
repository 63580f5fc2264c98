"""The load side: marshmallow schemas read a wire dict (camelCase keys, as in the OpenAPI
components) into the keyword arguments of a domain command.

Split of duties: marshmallow owns *structure and type* (which keys, required or not, string vs
integer vs boolean, readOnly keys dropped by ``unknown = EXCLUDE``); the command's
``__post_init__`` owns every *value rule* (lengths, ranges, enums, patterns, money), written once
for every protocol. A marshmallow ValidationError never escapes: ``load`` turns it into
InvalidInput, keyed by wire field names (``source.number``, ``medicalInfo.notes``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields

from services.shared.errors import FieldError, InvalidInput

MISSING_MESSAGE = "Missing data for required field."


class LoadSchema(Schema):
    """Base of every load schema: keys the command does not take (readOnly fields such as
    ``id``, ``createdAt``, ``links``) are dropped."""

    class Meta:
        unknown = EXCLUDE


def Str(key: str | None = None, *, required: bool = False) -> fields.Field[Any]:  # noqa: N802
    return fields.String(data_key=key, required=required)


def Int(key: str | None = None, *, required: bool = False) -> fields.Field[Any]:  # noqa: N802
    return fields.Integer(data_key=key, required=required, strict=True)


def Bool(key: str | None = None, *, required: bool = False) -> fields.Field[Any]:  # noqa: N802
    """Only JSON true/false (marshmallow would also take "yes", 1, ...)."""
    return fields.Boolean(data_key=key, required=required, truthy={True}, falsy={False})


def Money(key: str | None = None, *, required: bool = False) -> fields.Field[Any]:  # noqa: N802
    """A decimal string, passed on as written: how it is written, its range and places are the
    command's rules (services/shared/rules.py Rules.money)."""
    return fields.String(data_key=key, required=required)


def Obj(key: str | None = None, *, required: bool = False) -> fields.Field[Any]:  # noqa: N802
    """A JSON object passed through as it is (the command checks its keys and values)."""
    return fields.Dict(data_key=key, required=required, keys=fields.String())


def field_errors(messages: Any, prefix: str = "") -> list[FieldError]:
    """marshmallow's nested ``{"source": {"number": ["..."]}}`` → ``source.number`` errors."""
    if isinstance(messages, Mapping):
        found: list[FieldError] = []
        for key, value in messages.items():
            name = prefix if key == "_schema" else f"{prefix}.{key}" if prefix else str(key)
            found.extend(field_errors(value, name))
        return found
    if (
        isinstance(messages, list | tuple)
        and messages
        and all(isinstance(m, str) for m in messages)
    ):
        code = "required" if MISSING_MESSAGE in messages else "type"
        return [FieldError(prefix or "body", " ".join(messages), code)]
    if isinstance(messages, list | tuple):
        return [e for m in messages for e in field_errors(m, prefix)]
    return [FieldError(prefix or "body", str(messages), "type")]


def load(schema: Schema, body: Any, prefix: str = "") -> dict[str, Any]:
    """The command's keyword arguments, or InvalidInput naming every badly typed field. A null
    is taken as absent (adapters such as GraphQL pass unset optional arguments as None), so
    the command's default applies, or a required field is reported missing."""
    if not isinstance(body, Mapping):
        raise InvalidInput([FieldError(prefix.rstrip(".") or "body", "must be an object", "type")])
    try:
        data: dict[str, Any] = schema.load({k: v for k, v in body.items() if v is not None})
    except ValidationError as exc:
        raise InvalidInput(field_errors(exc.messages, prefix.rstrip("."))) from None
    return data
