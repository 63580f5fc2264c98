"""The audit log, read side: verify the chains, list and get entries (Admin API).

Appending is ``services.shared.audit.record`` (re-exported here), called by each domain in the
transaction of its change. The log is append-only: nothing in services, routes or jobs updates
or deletes an audit row (tests/unit/test_audit_log.py asserts that no UPDATE or DELETE
statement on the audit tables exists outside tests; PostgreSQL's trigger refuses both).

``verify`` walks every tenant's chain (or one) in ``seq`` order, in batches of
``VERIFY_BATCH`` rows, each batch its own short read: it recomputes each row's hash, checks that
``seq`` runs 1, 2, 3… without a gap, that each ``prev_hash`` is the previous row's hash (the
first's ``GENESIS_HASH``) and that the tenant's head (``audit_heads``) names the last row. The
first broken link is reported (tenant, seq, id, what is wrong). ``make audit-verify``."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, union
from sqlalchemy.orm import Session

from models.audit_log import (
    ENTITY_ID_MAX,
    GENESIS_HASH,
    AuditAction,
    AuditEntity,
    AuditHead,
    AuditLog,
)
from models.database import Database
from services.shared.audit import record, row_hash
from services.shared.errors import Forbidden, NotFound
from services.shared.pagination import Page, PageRequest
from services.shared.principal import ADMIN_SCOPE, Principal, require_scope
from services.shared.rules import Rules

__all__ = [
    "AuditAction",
    "AuditEntity",
    "AuditLogService",
    "AuditQuery",
    "BrokenLink",
    "ChainReport",
    "check_chains",
    "get_entry",
    "list_entries",
    "record",
    "require_admin",
    "verify",
]

VERIFY_BATCH = 500


@dataclass(frozen=True)
class BrokenLink:
    """The first place a tenant's chain does not hold. ``seq``/``id`` name the row at fault
    (``id`` None when the row is missing: a gap, or a head past the last row)."""

    tenant: str
    seq: int
    id: uuid.UUID | None
    problem: str

    def __str__(self) -> str:
        tenant = self.tenant or "(shared pool)"
        return f"tenant {tenant} seq {self.seq} id {self.id or '-'}: {self.problem}"


@dataclass(frozen=True)
class ChainReport:
    rows: int
    tenants: int
    broken: BrokenLink | None


def _tenants(session: Session) -> list[str]:
    both = union(select(AuditLog.tenant_id), select(AuditHead.tenant_id)).subquery()
    return sorted(session.scalars(select(both.c.tenant_id).distinct()))


def _batch(tenant: str, after_seq: int) -> Callable[[Session], list[AuditLog]]:
    def work(session: Session) -> list[AuditLog]:
        stmt = (
            select(AuditLog)
            .where(AuditLog.tenant_id == tenant, AuditLog.seq > after_seq)
            .order_by(AuditLog.seq)
            .limit(VERIFY_BATCH)
        )
        return list(session.scalars(stmt))

    return work


def _head(tenant: str) -> Callable[[Session], tuple[int, str] | None]:
    def work(session: Session) -> tuple[int, str] | None:
        head = session.get(AuditHead, tenant)
        return None if head is None else (head.seq, head.hash)

    return work


def _check_row(row: AuditLog, seq: int, prev_hash: str) -> str | None:
    if row.seq != seq:
        return f"row {seq} is missing (the next row is seq {row.seq})"
    if row.prev_hash != prev_hash:
        return "prev_hash does not match the previous row's hash"
    if row_hash(row) != row.hash:
        return "hash does not match the row's contents (the row was altered)"
    return None


async def _check_tenant(
    db: Database, tenant: str, progress: Callable[[int], None] | None
) -> tuple[int, BrokenLink | None]:
    seq, prev_hash, checked = 0, GENESIS_HASH, 0
    while True:
        rows = await db.run_system(_batch(tenant, seq))
        for row in rows:
            problem = _check_row(row, seq + 1, prev_hash)
            if problem is not None:
                missing = row.seq != seq + 1
                return checked, BrokenLink(tenant, seq + 1, None if missing else row.id, problem)
            seq, prev_hash, checked = row.seq, row.hash, checked + 1
        if progress is not None and rows:
            progress(len(rows))
        if len(rows) < VERIFY_BATCH:
            break
    head = await db.run_system(_head(tenant))
    if head is None:
        if checked:
            return checked, BrokenLink(tenant, seq, None, "the chain head is missing")
    elif head[0] != seq:
        return checked, BrokenLink(
            tenant,
            head[0],
            None,
            f"the head says the chain ends at seq {head[0]}, the last row is seq {seq} "
            "(rows at the end were removed)",
        )
    elif head[1] != prev_hash:
        return checked, BrokenLink(tenant, seq, None, "the head's hash is not the last row's hash")
    return checked, None


async def check_chains(
    db: Database, tenant: str | None = None, progress: Callable[[int], None] | None = None
) -> ChainReport:
    """Walk every tenant's chain (or ``tenant``'s) and stop at the first broken link.
    ``progress(n)`` is called after each batch of ``n`` rows checked."""
    tenants = [tenant] if tenant is not None else await db.run_system(_tenants)
    total = 0
    for name in tenants:
        checked, broken = await _check_tenant(db, name, progress)
        total += checked
        if broken is not None:
            return ChainReport(total, len(tenants), broken)
    return ChainReport(total, len(tenants), None)


async def verify(db: Database, tenant: str | None = None) -> BrokenLink | None:
    """The first broken link of every tenant's chain (or ``tenant``'s), None if all hold."""
    return (await check_chains(db, tenant)).broken


@dataclass(frozen=True)
class AuditQuery:
    """List Audit Logs' filters; each one given narrows the list (all must hold). Validates
    itself (wire names: actorId, action, entityType, entityId, from, to)."""

    actor_id: uuid.UUID | None = None
    action: str | None = None
    entity_type: str | None = None
    entity_id: str | None = None
    since: datetime | None = None
    """Inclusive lower bound of ``occurred_at`` (wire ``from``)."""
    until: datetime | None = None
    """Exclusive upper bound of ``occurred_at`` (wire ``to``)."""

    def __post_init__(self) -> None:
        rules = Rules()
        rules.choice("action", self.action, AuditAction, optional=True)
        rules.choice("entityType", self.entity_type, AuditEntity, optional=True)
        rules.text("entityId", self.entity_id, min_len=1, max_len=ENTITY_ID_MAX, optional=True)
        for name, value in (("from", self.since), ("to", self.until)):
            if value is not None and value.tzinfo is None:
                rules.fail(name, "must carry a time zone", "format")
        since, until = self.since, self.until
        if since and until and since.tzinfo and until.tzinfo and since >= until:
            rules.fail("to", "must be later than from", "range")
        rules.done()


def list_entries(
    session: Session, query: AuditQuery, paging: PageRequest | None = None
) -> Page[AuditLog]:
    """The session tenant's audit rows matching ``query``, newest first (by ``seq``)."""
    paging = paging or PageRequest()
    where = []
    if query.actor_id is not None:
        where.append(AuditLog.actor_id == query.actor_id)
    if query.action is not None:
        where.append(AuditLog.action == query.action)
    if query.entity_type is not None:
        where.append(AuditLog.entity_type == query.entity_type)
    if query.entity_id is not None:
        where.append(AuditLog.entity_id == query.entity_id)
    if query.since is not None:
        where.append(AuditLog.occurred_at >= query.since)
    if query.until is not None:
        where.append(AuditLog.occurred_at < query.until)
    total = session.scalar(select(func.count()).select_from(AuditLog).where(*where)) or 0
    rows = session.scalars(
        select(AuditLog)
        .where(*where)
        .order_by(AuditLog.seq.desc())
        .offset(paging.offset)
        .limit(paging.limit)
    )
    return paging.of_rows(list(rows), total)


def get_entry(session: Session, entry_id: uuid.UUID) -> AuditLog:
    """One audit row of the session's tenant. Raises NotFound."""
    row = session.get(AuditLog, entry_id)
    if row is None:
        raise NotFound("audit log", entry_id)
    return row


def require_admin(principal: Principal) -> None:
    """The audit log is for the tenant's admins: AuthenticationFailed without a token,
    Forbidden without the admin role and scope."""
    require_scope(principal, ADMIN_SCOPE)
    if not principal.is_admin:
        raise Forbidden("The audit log is for admins only.")


class AuditLogService:
    """List Audit Logs and Get Audit Log Details for the Admin API: the caller's tenant only,
    admins only."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def list(
        self, principal: Principal, query: AuditQuery, paging: PageRequest
    ) -> Page[AuditLog]:
        require_admin(principal)
        return await self.db.run(principal.tenant, lambda s: list_entries(s, query, paging))

    async def get(self, principal: Principal, entry_id: uuid.UUID) -> AuditLog:
        require_admin(principal)
        return await self.db.run(principal.tenant, lambda s: get_entry(s, entry_id))
