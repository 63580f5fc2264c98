"""User management (Admin API): list and read the tenant's accounts, change an account's status.

Rules:
- Only an ACTIVE account logs in (services/accounts: Forbidden otherwise) and only its tokens
  work (auth/principals, through the role cache's ``Standing.status``).
- Suspending or deactivating an account also ends every token it holds (``token_version`` goes
  up), so a later reactivation needs a new login. This process forgets its cached standing at
  once; other workers within the role cache's lifetime (PETSTORE_ROLE_CACHE_SECONDS, 5 s).
- An admin cannot change their own status, and the tenant's last ACTIVE admin cannot be made
  anything else (Conflict): the tenant would be left without staff.
- A reason (1-500 characters) is required and kept with the status and when it changed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from models import Order, User
from models.base import utcnow
from models.database import Database
from models.enums import Role, UserStatus
from services.accounts.roles import RoleLookup
from services.admin import require_admin
from services.shared import audit
from services.shared.audit import AuditAction, AuditEntity
from services.shared.errors import Conflict, NotFound
from services.shared.pagination import Page, PageRequest
from services.shared.principal import Principal
from services.shared.rules import Rules

USER_SORTS = {
    "createdAt": User.created_at,
    "username": func.lower(User.username),
    "lastLoginAt": User.last_login_at,
}
"""``sort`` values (a leading ``-`` for descending)."""
DEFAULT_USER_SORT = "-createdAt"


@dataclass(frozen=True)
class UserQuery:
    """List Users: ``q`` (a case-insensitive substring of the username or email), ``status``,
    ``role``, ``sort``. Validates itself."""

    q: str | None = None
    status: str | None = None
    role: str | None = None
    sort: str = DEFAULT_USER_SORT

    def __post_init__(self) -> None:
        rules = Rules()
        rules.text("q", self.q, min_len=1, max_len=100, optional=True)
        rules.choice("status", self.status, UserStatus, optional=True)
        rules.choice("role", self.role, Role, optional=True)
        sorts = [*USER_SORTS, *(f"-{s}" for s in USER_SORTS)]
        if self.sort not in sorts:
            rules.fail("sort", f"must be one of {', '.join(sorts)}", "enum")
        rules.done()


@dataclass(frozen=True)
class StatusChange:
    """Update User Status: the new status and why (1 to 500 characters)."""

    status: str
    reason: str

    def __post_init__(self) -> None:
        rules = Rules()
        rules.choice("status", self.status, UserStatus)
        rules.text("reason", self.reason, min_len=1, max_len=500)
        if isinstance(self.reason, str) and self.reason and not self.reason.strip():
            rules.fail("reason", "must not be blank", "minLength")
        rules.done()


@dataclass(frozen=True)
class ManagedUser:
    """An account as staff see it: the account and how many orders it placed."""

    user: User
    order_count: int


def _order_count() -> object:
    return (
        select(func.count(Order.id))
        .where(Order.user_id == User.id)
        .correlate(User)
        .scalar_subquery()
    )


def _filtered(query: UserQuery) -> Select[Any]:
    stmt = select(User, _order_count())  # type: ignore[call-overload]
    if query.q:
        needle = f"%{query.q.lower()}%"
        stmt = stmt.where(
            or_(func.lower(User.username).like(needle), func.lower(User.email).like(needle))
        )
    if query.status:
        stmt = stmt.where(User.status == query.status)
    if query.role:
        stmt = stmt.where(User.role == query.role)
    return stmt  # type: ignore[no-any-return]


class UserAdmin:
    """Built once with the database and the role cache (whose entries a status change drops)."""

    def __init__(self, db: Database, roles: RoleLookup) -> None:
        self.db = db
        self.roles = roles

    async def list(
        self, principal: Principal, query: UserQuery, paging: PageRequest
    ) -> Page[ManagedUser]:
        """List Users (admin): the tenant's accounts, filtered and sorted, one page."""
        require_admin(principal)
        key = query.sort.lstrip("-")
        column = USER_SORTS[key]
        descending = query.sort.startswith("-")
        order = column.desc() if descending else column.asc()
        # NULLs (never logged in) last either way, ids break ties: pages never overlap.
        ordering = [column.is_(None), order, User.id.desc() if descending else User.id.asc()]

        def work(session: Session) -> Page[ManagedUser]:
            stmt = _filtered(query)
            total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
            rows = session.execute(
                stmt.order_by(*ordering).offset(paging.offset).limit(paging.limit)
            ).all()
            return paging.of_rows([ManagedUser(u, int(n or 0)) for u, n in rows], int(total))

        return await self.db.run(principal.tenant, work)

    async def get(self, principal: Principal, user_id: uuid.UUID) -> ManagedUser:
        """Get User Details (admin). Raises NotFound (also for another tenant's account)."""
        require_admin(principal)

        def work(session: Session) -> ManagedUser:
            row = session.execute(_filtered(UserQuery()).where(User.id == user_id)).first()
            if row is None:
                raise NotFound("user", user_id)
            return ManagedUser(row[0], int(row[1] or 0))

        return await self.db.run(principal.tenant, work)

    async def set_status(
        self, principal: Principal, user_id: uuid.UUID, change: StatusChange
    ) -> ManagedUser:
        """Update User Status (admin). Raises NotFound, Conflict (oneself, the last ACTIVE
        admin). The same status again only updates the reason."""
        require_admin(principal)
        if user_id == principal.subject and change.status != UserStatus.ACTIVE:
            raise Conflict(
                "Admins cannot suspend or deactivate their own account; ask another admin.",
                field="status",
                code="self_status",
            )

        def work(session: Session) -> ManagedUser:
            user = session.get(User, user_id, with_for_update=True)
            if user is None:
                raise NotFound("user", user_id)
            leaving = user.status == UserStatus.ACTIVE and change.status != UserStatus.ACTIVE
            if leaving and user.role == Role.ADMIN:
                # Lock the tenant's active admins, so two admins suspending each other at once
                # cannot both pass this check.
                active_admins = session.scalars(
                    select(User.id)
                    .where(User.role == Role.ADMIN, User.status == UserStatus.ACTIVE)
                    .with_for_update()
                ).all()
                if len(active_admins) <= 1:
                    raise Conflict(
                        "This is the tenant's last ACTIVE admin; it cannot be "
                        f"{change.status.lower()}. Make another account an ACTIVE admin first.",
                        field="status",
                        code="last_admin",
                    )
            now: datetime = utcnow()
            before = {"status": user.status, "reason": user.status_reason}
            if leaving:
                user.token_version = (user.token_version or 0) + 1  # its tokens end for good
            if user.status != change.status:
                user.status_changed_at = now
            user.status = change.status
            user.status_reason = change.reason
            user.version += 1
            user.updated_at = now
            count = session.scalar(select(func.count(Order.id)).where(Order.user_id == user.id))
            audit.record(  # last: the audit head is the unit's last lock
                session,
                principal,
                AuditAction.USER_STATUS_CHANGED,
                AuditEntity.USER,
                user.id,
                before=before,
                after={"status": change.status, "reason": change.reason},
            )
            return ManagedUser(user, int(count or 0))

        managed = await self.db.run(principal.tenant, work, write=True)
        self.roles.forget(principal.tenant, user_id)
        return managed
