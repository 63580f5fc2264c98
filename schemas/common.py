from __future__ import annotations

from typing import Any

from marshmallow import fields

RFC3339 = "%Y-%m-%dT%H:%M:%SZ"


def Timestamp(**kwargs: Any) -> fields.DateTime:  # noqa: N802 - reads like a field class
    return fields.DateTime(format=RFC3339, **kwargs)


def tenant_or_none(obj: Any) -> str | None:
    return obj.tenant_id or None
