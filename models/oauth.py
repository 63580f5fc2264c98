"""OAuth 2.0 authorization server rows (services/oauth): clients, authorization codes, refresh
tokens (rotated, in families) and device codes.

These rows are not ``TenantScoped``: a client id, a code or a device's user code arrives before
any tenant is known (no X-Tenant-ID on /oauth), so they are looked up by their random,
unguessable value and each row names its tenant (``tenant_id``); everything done for it then runs
in that tenant (the user is looked up there, its audit rows go to that tenant's chain). Secrets
(client secrets, codes, refresh tokens, device codes) are stored as SHA-256 digests only: they
are random 256-bit values, so a digest is as good as a slow hash and can be looked up."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime


class OAuthClient(Base):
    __tablename__ = "oauth_clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret_hash: Mapped[str | None] = mapped_column(String(64))  # None: a public client
    name: Mapped[str] = mapped_column(String(100))
    redirect_uris: Mapped[list[Any]] = mapped_column(JSON())
    scope: Mapped[str] = mapped_column(String(500))  # allowed scopes, space-separated
    grant_types: Mapped[list[Any]] = mapped_column(JSON())
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(32))
    tenant_id: Mapped[str] = mapped_column(String(36), index=True)
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OAuthCode(Base):
    """An authorization code: single-use (``used_at``), short-lived; the refresh family it
    started is remembered so that a replayed code can end it (RFC 6749 §4.1.2)."""

    __tablename__ = "oauth_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid())
    tenant_id: Mapped[str] = mapped_column(String(36))
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    scope: Mapped[str] = mapped_column(String(500))
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(10))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    family_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    access_jti: Mapped[str | None] = mapped_column(String(64))
    access_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OAuthRefreshToken(Base):
    """One refresh token of a family: each use rotates it (``used_at`` set, a successor issued
    in the same family); presenting a used one revokes the whole family. Bound to its client,
    user, scope and the user's ``token_version`` at issue (a password change ends it)."""

    __tablename__ = "oauth_refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    family_id: Mapped[uuid.UUID] = mapped_column(Uuid(), index=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid(), index=True)
    tenant_id: Mapped[str] = mapped_column(String(36))
    scope: Mapped[str] = mapped_column(String(500))
    token_version: Mapped[int] = mapped_column(Integer())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    access_jti: Mapped[str | None] = mapped_column(String(64))  # the access token issued with it
    access_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OAuthDeviceCode(Base):
    """RFC 8628: a device's pending authorization. ``status``: pending, approved, denied, used
    (tokens handed out once); ``last_poll_at`` and ``interval`` decide ``slow_down``."""

    __tablename__ = "oauth_device_codes"

    device_code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_code: Mapped[str] = mapped_column(String(16), unique=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    tenant_id: Mapped[str] = mapped_column(String(36))
    scope: Mapped[str] = mapped_column(String(500))
    interval: Mapped[int] = mapped_column(Integer())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    status: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    last_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
