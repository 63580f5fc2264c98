"""Tenant isolation enforced below the services: every ORM SELECT/UPDATE/DELETE touching a
TenantScoped class gets ``tenant_id = <session tenant>`` added, and every new row takes the
session's tenant. A session without a tenant refuses to run queries (fail closed)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from models.base import TenantScoped


class _AllTenants:
    """Marker for the few system jobs that work across tenants (the webhook delivery worker).
    Not a string, so no request value can ever select it."""

    def __repr__(self) -> str:
        return "ALL_TENANTS"


ALL_TENANTS = _AllTenants()


class TenantMissingError(RuntimeError):
    """A query ran on a session that was not given a tenant."""


class TenantSession(Session):
    """The only session class the app uses; its events scope every query to one tenant."""


def _tenant_of(session: Session) -> str | _AllTenants:
    tenant: object = session.info.get("tenant")
    if isinstance(tenant, _AllTenants | str):
        return tenant
    raise TenantMissingError("session has no tenant")


def _scope_query(state: ORMExecuteState) -> None:
    if state.is_column_load or state.is_relationship_load:
        return
    if state.is_select or state.is_update or state.is_delete:
        tenant = _tenant_of(state.session)
        if isinstance(tenant, _AllTenants):
            return
        state.statement = state.statement.options(
            with_loader_criteria(
                TenantScoped,
                lambda cls: cls.tenant_id == tenant,
                include_aliases=True,
            )
        )


def _stamp_tenant(session: Session, _ctx: Any, _instances: Any) -> None:
    tenant = _tenant_of(session)
    if isinstance(tenant, _AllTenants):
        for obj in session.new:  # a system job must say which tenant a new row belongs to
            if isinstance(obj, TenantScoped) and not isinstance(obj.tenant_id, str):
                raise TenantMissingError("new row without a tenant in a system session")
        return
    for obj in session.new:
        if isinstance(obj, TenantScoped):
            obj.tenant_id = tenant
    for obj in session.dirty:
        if isinstance(obj, TenantScoped) and obj.tenant_id != tenant:
            raise TenantMissingError("row moved across tenants")


def install_tenant_filter() -> None:
    """Idempotent: attach the tenant events to TenantSession once per process."""
    if event.contains(TenantSession, "do_orm_execute", _scope_query):
        return
    event.listen(TenantSession, "do_orm_execute", _scope_query)
    event.listen(TenantSession, "before_flush", _stamp_tenant)
