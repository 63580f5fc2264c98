from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, UniqueConstraint, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, TenantScoped, UTCDateTime, utcnow, uuid7
from models.enums import Role, UserStatus


class User(TenantScoped, Base):
    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("tenant_id", "username", name="uq_users_tenant_username"),
        UniqueConstraint("tenant_id", "email", name="uq_users_tenant_email"),
        # Usernames and emails are unique per tenant regardless of case (login ignores case).
        Index("uq_users_tenant_username_ci", "tenant_id", text("lower(username)"), unique=True),
        Index("uq_users_tenant_email_ci", "tenant_id", text("lower(email)"), unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=uuid7)
    username: Mapped[str] = mapped_column(String(50))
    email: Mapped[str] = mapped_column(String(254))
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(20))
    preferences: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=Role.USER)
    version: Mapped[int] = mapped_column(default=1)
    # Every token carries the version it was issued under ("ver"); a password change or a logout
    # raises it, which ends every earlier token.
    token_version: Mapped[int] = mapped_column(default=0, server_default="0")
    # Admin API: only an ACTIVE account logs in and keeps its tokens working.
    status: Mapped[str] = mapped_column(
        String(16), default=UserStatus.ACTIVE, server_default=UserStatus.ACTIVE.value, index=True
    )
    status_reason: Mapped[str | None] = mapped_column(String(500))
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
