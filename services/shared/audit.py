"""Appending to the audit log, in the caller's transaction (the outbox's rule: the change and
its audit row commit or roll back together).

Append-only: this module only inserts audit rows; no service, route or job updates or deletes
one (tests/unit/test_audit_log.py checks the code base for it; PostgreSQL also refuses UPDATE
and DELETE with a trigger, migration 0012). Reading, verifying and listing the log is
``services.admin.audit``; appending lives here, under every domain, so that accounts, orders and
webhooks can record their own events (services.admin sits above them).

Each tenant's rows form a hash chain: row ``n`` stores ``seq = n``, ``prev_hash`` (the hash of
row ``n - 1``, or ``GENESIS_HASH`` for the first) and ``hash`` = SHA-256 over the canonical JSON
(sorted keys, no spaces, UTF-8) of every other field of the row, ``prevHash`` included. The
tenant's head (``audit_heads``: last seq and hash) is locked before appending: SELECT ... FOR
UPDATE on PostgreSQL; SQLite's writers are serialized already (``BEGIN IMMEDIATE``, one writer
thread). So two transactions never fork a chain; the second waits for the first to commit.
Call ``record`` last in a unit of work: the head lock is then the last lock every audited
transaction takes (no lock-order deadlock) and is held only until commit.

Never store a secret: ``before``/``after`` lose any key named like a password, token, secret,
card or account number (``SECRET_KEYS``), and callers pass only what an auditor needs."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from models.audit_log import (
    ADDRESS_MAX,
    ENTITY_ID_MAX,
    GENESIS_HASH,
    USER_AGENT_MAX,
    AuditAction,
    AuditEntity,
    AuditHead,
    AuditLog,
)
from models.base import utcnow, uuid7
from models.tenancy import TenantMissingError
from services.shared.principal import Principal

__all__ = [
    "GENESIS_HASH",
    "SECRET_KEYS",
    "AuditAction",
    "AuditEntity",
    "canonical",
    "record",
    "row_hash",
    "system_actor",
]

SECRET_KEYS = frozenset(
    {
        "password",
        "passwordhash",
        "currentpassword",
        "newpassword",
        "token",
        "accesstoken",
        "refreshtoken",
        "secret",
        "webhooksecret",
        "cvc",
        "cvv",
        "number",
        "cardnumber",
        "accountnumber",
        "routingnumber",
        "iban",
    }
)
"""Keys dropped from before/after at any depth (compared lower-case, without ``_`` and ``-``)."""


def system_actor(tenant: str) -> Principal:
    """The actor of a system job (housekeeping, reconciliation) acting in ``tenant``."""
    return Principal(subject=None, role="system", scopes=frozenset(), tenant=tenant)


def _plain(value: Any) -> Any:
    """A JSON-native copy of ``value`` without secret keys (Decimal and UUID as strings,
    datetimes as RFC 3339)."""
    if isinstance(value, dict):
        return {
            str(k): _plain(v)
            for k, v in value.items()
            if str(k).lower().replace("_", "").replace("-", "") not in SECRET_KEYS
        }
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Enum):
        return _plain(value.value)
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return _timestamp(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"audit before/after cannot hold {type(value).__name__}")


def _timestamp(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _snapshot(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    plain = _plain(value)
    # Exactly what the JSON column gives back, so the hash recomputes alike after a reload.
    loaded: dict[str, Any] = json.loads(json.dumps(plain, allow_nan=False))
    return loaded


def canonical(row: AuditLog) -> bytes:
    """The bytes a row's hash covers: every field but ``hash``, as canonical JSON."""
    fields = {
        "id": str(row.id),
        "tenant": row.tenant_id,
        "seq": row.seq,
        "action": row.action,
        "actorId": str(row.actor_id) if row.actor_id is not None else None,
        "actorRole": row.actor_role,
        "entityType": row.entity_type,
        "entityId": row.entity_id,
        "occurredAt": _timestamp(row.occurred_at),
        "clientAddress": row.client_address,
        "userAgent": row.user_agent,
        "before": row.before,
        "after": row.after,
        "prevHash": row.prev_hash,
    }
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode()


def row_hash(row: AuditLog) -> str:
    return hashlib.sha256(canonical(row)).hexdigest()


def _clip(value: str | None, limit: int) -> str | None:
    return value[:limit] if value else None


def _locked_head(session: Session, tenant: str) -> AuditHead:
    """The tenant's chain head, created at genesis if missing, locked for this transaction.
    INSERT ... ON CONFLICT DO NOTHING makes a concurrent first append wait for the other and
    then lock the head it created, instead of failing on the primary key."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(cast(Table, AuditHead.__table__))
        .values(tenant_id=tenant, seq=0, hash=GENESIS_HASH)
        .on_conflict_do_nothing(index_elements=["tenant_id"])
    )
    stmt = (
        select(AuditHead)
        .where(AuditHead.tenant_id == tenant)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return session.scalars(stmt).one()


def _tenant(session: Session, actor: Principal) -> str:
    """The session's tenant (which must be the actor's); in a system session, the actor's."""
    tenant = session.info.get("tenant")
    if isinstance(tenant, str):
        if tenant != actor.tenant:
            raise TenantMissingError("audit actor and session are in different tenants")
        return tenant
    if tenant is None:
        raise TenantMissingError("session has no tenant")
    return actor.tenant  # a system session (ALL_TENANTS): the actor names the tenant


def record(
    session: Session,
    actor: Principal,
    action: AuditAction,
    entity_type: AuditEntity,
    entity_id: object,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditLog:
    """Append one audit row to the actor's tenant's chain in ``session``'s transaction and
    return it (flushed). Any error propagates: the change it describes must not commit
    without its row."""
    tenant = _tenant(session, actor)
    head = _locked_head(session, tenant)
    row = AuditLog(
        id=uuid7(),
        tenant_id=tenant,
        seq=head.seq + 1,
        action=AuditAction(action).value,
        actor_id=actor.subject,
        actor_role=actor.role[:20],
        entity_type=AuditEntity(entity_type).value,
        entity_id=str(entity_id)[:ENTITY_ID_MAX],
        occurred_at=utcnow(),
        client_address=_clip(actor.address, ADDRESS_MAX),
        user_agent=_clip(actor.user_agent, USER_AGENT_MAX),
        before=_snapshot(before),
        after=_snapshot(after),
        prev_hash=head.hash,
    )
    row.hash = row_hash(row)
    session.add(row)
    head.seq = row.seq
    head.hash = row.hash
    session.flush()
    return row
