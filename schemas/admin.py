"""The Admin API's wire shapes (spec/admin.yaml): AdminUser, AdminUserCollection,
DashboardStats, AdminOrderCollection; and its request bodies and queries → commands."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from schemas.common import collection_links, page_meta, timestamp
from schemas.orders import dump_order
from schemas.users import dump_user
from services.admin.dashboard import DashboardStats, Period
from services.admin.orders import ForceCancel, OrderQuery
from services.admin.users import ManagedUser, StatusChange, UserQuery
from services.orders.orders import OrderView
from services.shared.errors import FieldError, InvalidInput
from services.shared.pagination import Page


def dump_admin_user(managed: ManagedUser, admin_base: str, api_base: str) -> dict[str, Any]:
    """#/components/schemas/AdminUser: the account as its owner sees it (without preferences),
    its status and activity, and links into both modules."""
    user = managed.user
    user_id = str(user.id)
    data = dump_user(user, api_base)
    data.pop("preferences", None)
    data.update(
        {
            "status": user.status,
            "statusReason": user.status_reason,
            "statusChangedAt": timestamp(user.status_changed_at)
            if user.status_changed_at
            else None,
            "lastLoginAt": timestamp(user.last_login_at) if user.last_login_at else None,
            "orderCount": managed.order_count,
            "links": {
                "self": f"{admin_base}/users/{user_id}",
                "user": f"{api_base}/users/{user_id}",
                "orders": f"{admin_base}/orders?userId={user_id}",
            },
        }
    )
    return data


def dump_admin_users(
    page: Page[ManagedUser], admin_base: str, api_base: str, params: dict[str, Any]
) -> dict[str, Any]:
    return {
        "data": [dump_admin_user(m, admin_base, api_base) for m in page.items],
        "pagination": page_meta(page),
        "links": collection_links(page, admin_base, "/users", params),
    }


def dump_admin_orders(
    page: Page[OrderView], admin_base: str, api_base: str, params: dict[str, Any]
) -> dict[str, Any]:
    return {
        "data": [dump_order(view, api_base) for view in page.items],
        "pagination": page_meta(page),
        "links": collection_links(page, admin_base, "/orders", params),
    }


def dump_dashboard(stats: DashboardStats) -> dict[str, Any]:
    """#/components/schemas/DashboardStats."""
    return {
        "period": {"from": timestamp(stats.period.start), "to": timestamp(stats.period.end)},
        "pets": {
            "total": stats.pets_total,
            "byStatus": stats.pets_by_status,
            "bySpecies": stats.pets_by_species,
        },
        "orders": {"total": stats.orders_total, "byStatus": stats.orders_by_status},
        "revenue": [
            {"currency": currency, "amount": f"{amount:.2f}"}
            for currency, amount in stats.revenue.items()
        ],
        "newUsers": stats.new_users,
    }


def dump_audit_log(entry: Any) -> dict[str, Any]:
    """#/components/schemas/AuditLog from an audit row (models/audit_log.py): the actor is
    ``userId``, the reference's name for it."""
    return {
        "id": str(entry.id),
        "action": entry.action,
        "userId": str(entry.actor_id) if entry.actor_id else None,
        "actorRole": entry.actor_role,
        "entityType": entry.entity_type,
        "entityId": entry.entity_id,
        "occurredAt": timestamp(entry.occurred_at),
        "clientAddress": entry.client_address,
        "userAgent": entry.user_agent,
        "before": entry.before,
        "after": entry.after,
        "seq": entry.seq,
        "prevHash": entry.prev_hash,
        "hash": entry.hash,
    }


def dump_audit_logs(page: Page[Any], admin_base: str, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "data": [dump_audit_log(entry) for entry in page.items],
        "pagination": page_meta(page),
        "links": collection_links(page, admin_base, "/audit-logs", params),
    }


def load_audit_filters(params: dict[str, Any]) -> dict[str, Any]:
    """List Audit Logs' query → the audit service's AuditQuery keyword arguments (``userId`` is
    the actor)."""
    return {
        "actor_id": _uuid(params.get("userId")),
        "action": params.get("action"),
        "entity_type": params.get("entityType"),
        "entity_id": params.get("entityId"),
        "since": _time(params, "from"),
        "until": _time(params, "to"),
    }


def _uuid(value: Any) -> uuid.UUID | None:
    return None if value is None else uuid.UUID(str(value))


def _time(params: dict[str, Any], name: str) -> datetime | None:
    """An RFC 3339 query value (the spec checks its format; an offset is required)."""
    value = params.get(name)
    if value is None or isinstance(value, datetime):
        return value
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise InvalidInput([FieldError(name, "must be an RFC 3339 date-time", "format")])
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise InvalidInput([FieldError(name, "is out of range", "range")]) from None


def load_period(params: dict[str, Any]) -> Period:
    return Period.of(_time(params, "from"), _time(params, "to"))


def load_user_query(params: dict[str, Any]) -> UserQuery:
    return UserQuery(
        q=params.get("q"),
        status=params.get("status"),
        role=params.get("role"),
        sort=params.get("sort") or "-createdAt",
    )


def load_order_query(params: dict[str, Any]) -> OrderQuery:
    return OrderQuery(
        status=params.get("status"),
        user_id=_uuid(params.get("userId")),
        pet_id=_uuid(params.get("petId")),
        created_from=_time(params, "from"),
        created_to=_time(params, "to"),
    )


def load_status_change(body: dict[str, Any]) -> StatusChange:
    return StatusChange(status=body.get("status"), reason=body.get("reason"))  # type: ignore[arg-type]


def load_force_cancel(body: dict[str, Any]) -> ForceCancel:
    return ForceCancel(reason=body.get("reason"))  # type: ignore[arg-type]
