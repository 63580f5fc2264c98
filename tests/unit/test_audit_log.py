"""The audit log's core below the protocols: concurrent appends never fork a tenant's chain,
the first append of a tenant races safely, secrets never reach a row, the row's tenant is the
session's, and no code outside tests updates or deletes audit rows (append-only)."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import AuditHead, AuditLog
from models.database import Database
from models.tenancy import TenantMissingError
from services.admin import audit
from services.shared.audit import AuditAction, AuditEntity, record, system_actor
from services.shared.errors import AuthenticationFailed, Forbidden, InvalidInput, NotFound
from services.shared.pagination import PageRequest
from services.shared.principal import ROLE_SCOPES, Principal, anonymous
from settings import ROOT, Settings
from tests.conftest import run_db


def _actor(tenant: str) -> Principal:
    return Principal(
        uuid.uuid4(), "admin", ROLE_SCOPES["admin"], tenant, address="192.0.2.7", user_agent="t"
    )


def test_concurrent_appends_never_fork_the_chain(settings: Settings) -> None:
    """Twenty transactions append to one new tenant at once (in parallel threads on
    PostgreSQL, where the head's row lock orders them): seq 1..20, one chain."""
    tenant = str(uuid.uuid4())
    actor = _actor(tenant)

    def work(n: int) -> object:
        def append(session: Session) -> None:
            record(session, actor, AuditAction.USER_ROLE_CHANGED, AuditEntity.USER, n)

        return append

    async def go(db: Database) -> None:
        await asyncio.gather(*(db.run(tenant, work(n), write=True) for n in range(20)))  # type: ignore[arg-type]

    run_db(settings, go)

    async def read(db: Database) -> list[AuditLog]:
        stmt = select(AuditLog).order_by(AuditLog.seq)
        return await db.run(tenant, lambda s: list(s.scalars(stmt)))

    rows: list[AuditLog] = run_db(settings, read)
    assert [r.seq for r in rows] == list(range(1, 21))
    assert sorted(int(r.entity_id) for r in rows) == list(range(20))
    assert run_db(settings, lambda db: audit.verify(db, tenant)) is None


def test_secrets_are_dropped_from_before_and_after(settings: Settings) -> None:
    tenant = str(uuid.uuid4())
    after = {
        "username": "ann",
        "password": "hunter22",
        "password_hash": "$argon2id$...",
        "nested": {"accessToken": "eyJ...", "card": {"number": "4242", "last4": "4242"}},
        "Secret": "whsec_x",
    }

    def work(session: Session) -> AuditLog:
        return record(
            session, _actor(tenant), AuditAction.USER_REGISTERED, AuditEntity.USER, "x", None, after
        )

    row: AuditLog = run_db(settings, lambda db: db.run(tenant, work, write=True))
    assert row.after == {"username": "ann", "nested": {"card": {"last4": "4242"}}}


def test_the_row_belongs_to_the_sessions_tenant(settings: Settings) -> None:
    tenant, other = str(uuid.uuid4()), str(uuid.uuid4())

    def foreign(session: Session) -> None:
        record(session, _actor(other), AuditAction.LOGIN_FAILED, AuditEntity.USER, "x")

    with pytest.raises(TenantMissingError):
        run_db(settings, lambda db: db.run(tenant, foreign, write=True))

    def system(session: Session) -> AuditLog:  # a system job names the tenant by its actor
        return record(session, system_actor(other), AuditAction.PAYMENT_REFUNDED, "PAYMENT", 1)  # type: ignore[arg-type]

    row: AuditLog = run_db(settings, lambda db: db.run_system(system, write=True))
    assert (row.tenant_id, row.actor_id, row.actor_role) == (other, None, "system")
    head = run_db(settings, lambda db: db.run(other, lambda s: s.get(AuditHead, other)))
    assert (head.seq, head.hash) == (1, row.hash)


def test_record_refuses_an_unknown_action(settings: Settings) -> None:
    tenant = str(uuid.uuid4())

    def work(session: Session) -> None:
        record(session, _actor(tenant), "ORDER_EATEN", AuditEntity.ORDER, "x")  # type: ignore[arg-type]

    with pytest.raises(ValueError, match="ORDER_EATEN"):
        run_db(settings, lambda db: db.run(tenant, work, write=True))


WRITES = re.compile(
    r"(update|delete)\(\s*(AuditLog|AuditHead|\"audit_logs\"|'audit_logs')"
    r"|(AuditLog|AuditHead)\.__table__\.(update|delete)"
    r"|(UPDATE|DELETE\s+FROM)\s+audit_logs",
)


def test_no_code_outside_tests_updates_or_deletes_audit_rows() -> None:
    """Append-only: services, routes, jobs and commands only insert audit rows
    (services.shared.audit.record moves the head; the 0012 trigger's text is not a write)."""
    offenders = []
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT)
        if relative.parts[0] in {".venv", "tests", "node_modules", "build", "var", "migrations"}:
            continue
        text = Path(path).read_text(encoding="utf-8")
        offenders += [f"{relative}: {m.group(0)}" for m in WRITES.finditer(text)]
    assert offenders == []


def test_the_service_is_for_the_tenants_admins_only(settings: Settings) -> None:
    tenant = str(uuid.uuid4())
    admin = _actor(tenant)

    def work(session: Session) -> AuditLog:
        return record(session, admin, AuditAction.USER_STATUS_CHANGED, AuditEntity.USER, "u1")

    row: AuditLog = run_db(settings, lambda db: db.run(tenant, work, write=True))

    async def go(db: Database, who: Principal) -> object:
        service = audit.AuditLogService(db)
        page = await service.list(who, audit.AuditQuery(entity_id="u1"), PageRequest())
        return [r.id for r in page.items], (await service.get(who, row.id)).hash

    assert run_db(settings, lambda db: go(db, admin)) == ([row.id], row.hash)
    user = Principal(uuid.uuid4(), "user", ROLE_SCOPES["user"], tenant)
    with pytest.raises(Forbidden):
        run_db(settings, lambda db: go(db, user))
    with pytest.raises(AuthenticationFailed):
        run_db(settings, lambda db: go(db, anonymous(tenant)))
    with pytest.raises(NotFound):  # another tenant's admin sees nothing of it
        run_db(
            settings, lambda db: audit.AuditLogService(db).get(_actor(str(uuid.uuid4())), row.id)
        )


def test_queries_validate_themselves() -> None:
    later, earlier = datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(InvalidInput) as refused:
        audit.AuditQuery(action="ORDER_EATEN", entity_type="CAT", since=later, until=earlier)
    assert [e.field for e in refused.value.errors] == ["action", "entityType", "to"]
    with pytest.raises(InvalidInput):
        audit.AuditQuery(since=datetime(2026, 1, 1))  # naive
    assert (
        audit.AuditQuery(action="TOKEN_ISSUED", since=earlier, until=later).action == "TOKEN_ISSUED"
    )
