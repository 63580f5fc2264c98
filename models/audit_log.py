"""The audit log: an append-only, per-tenant hash chain of security events and admin actions.

Rows are written by ``services.shared.audit.record`` only, in the transaction of the change
they describe; nothing updates or deletes them. ``AuditHead`` is each tenant's chain head (its
last ``seq`` and ``hash``): appending locks it, so two transactions never fork the chain."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, TenantScoped, UTCDateTime, utcnow, uuid7


class AuditAction(StrEnum):
    """Every action the audit log records (SCREAMING_CASE, as the Admin API shows it)."""

    TOKEN_ISSUED = "TOKEN_ISSUED"  # noqa: S105 (a name, not a password)
    LOGIN_FAILED = "LOGIN_FAILED"
    PASSWORD_CHANGED = "PASSWORD_CHANGED"  # noqa: S105
    USER_REGISTERED = "USER_REGISTERED"
    USER_STATUS_CHANGED = "USER_STATUS_CHANGED"
    USER_ROLE_CHANGED = "USER_ROLE_CHANGED"
    PAYMENT_CAPTURED = "PAYMENT_CAPTURED"
    PAYMENT_REFUNDED = "PAYMENT_REFUNDED"
    WEBHOOK_SUBSCRIPTION_CREATED = "WEBHOOK_SUBSCRIPTION_CREATED"
    WEBHOOK_SUBSCRIPTION_DELETED = "WEBHOOK_SUBSCRIPTION_DELETED"
    ORDER_FORCE_CANCELLED = "ORDER_FORCE_CANCELLED"
    OAUTH_CLIENT_REGISTERED = "OAUTH_CLIENT_REGISTERED"
    OAUTH_REFRESH_FAMILY_REVOKED = "OAUTH_REFRESH_FAMILY_REVOKED"


class AuditEntity(StrEnum):
    """What an audit row is about."""

    USER = "USER"
    ORDER = "ORDER"
    PAYMENT = "PAYMENT"
    WEBHOOK_SUBSCRIPTION = "WEBHOOK_SUBSCRIPTION"
    TOKEN = "TOKEN"  # noqa: S105
    OAUTH_CLIENT = "OAUTH_CLIENT"
    OAUTH_REFRESH_FAMILY = "OAUTH_REFRESH_FAMILY"


GENESIS_HASH = "0" * 64
"""What the first row of every tenant's chain links to (``prev_hash``)."""

USER_AGENT_MAX = 512
ADDRESS_MAX = 64
ENTITY_ID_MAX = 100


class AuditLog(TenantScoped, Base):
    __tablename__ = "audit_logs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "seq", name="uq_audit_logs_tenant_seq"),
        Index("ix_audit_logs_tenant_occurred", "tenant_id", "occurred_at"),
        Index("ix_audit_logs_tenant_actor", "tenant_id", "actor_id"),
        Index("ix_audit_logs_tenant_action", "tenant_id", "action"),
        Index("ix_audit_logs_tenant_entity", "tenant_id", "entity_type", "entity_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid7)
    seq: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(40))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    actor_role: Mapped[str] = mapped_column(String(20))
    entity_type: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(String(ENTITY_ID_MAX))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    client_address: Mapped[str | None] = mapped_column(String(ADDRESS_MAX))
    user_agent: Mapped[str | None] = mapped_column(String(USER_AGENT_MAX))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(TenantScoped, Base):
    """A tenant's chain head: the ``seq`` and ``hash`` of its last audit row."""

    __tablename__ = "audit_heads"

    tenant_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))
