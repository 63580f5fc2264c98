from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, TenantScoped, UTCDateTime


class RevokedToken(TenantScoped, Base):
    """A token its holder logged out with (Revoke Token): refused until it would have expired
    anyway, then purged by the housekeeping job. Other tokens of the account keep working."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid(), index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
