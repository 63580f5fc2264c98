"""Engines and sessions for SQLite (embedded default) and PostgreSQL.

SQLite: WAL, foreign keys on, a busy timeout, and ``BEGIN IMMEDIATE`` for write transactions so a
read-then-write never fails on a lock upgrade. PostgreSQL: pre-ping, READ COMMITTED, row locks.
Read-only sessions run in autocommit on both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from models.tenancy import TenantSession, install_tenant_filter


def _sqlite_listeners(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module (its legacy mode defers BEGIN).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        for pragma in (
            "journal_mode=WAL",
            "foreign_keys=ON",
            "synchronous=NORMAL",
            "busy_timeout=10000",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin")
        if mode:  # writers only; readers run in autocommit (each statement its own snapshot)
            conn.exec_driver_sql(f"BEGIN {mode}")


class Database:
    """Owns the engines and hands out tenant-scoped sessions, one transaction each."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 10}
        else:
            kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=10)
        self.engine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            _sqlite_listeners(self.engine)
            self._writer = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        else:
            self._writer = self.engine
        # Read-only units of work need no explicit transaction on SQLite (the driver connection
        # is in autocommit; each statement reads one WAL snapshot): no BEGIN saves thread hops.
        self._reader = self.engine
        install_tenant_filter()
        self._readers = async_sessionmaker(
            self._reader, expire_on_commit=False, sync_session_class=TenantSession
        )
        self._writers = async_sessionmaker(
            self._writer, expire_on_commit=False, sync_session_class=TenantSession
        )

    @asynccontextmanager
    async def session(self, tenant: str, *, write: bool = False) -> AsyncIterator[AsyncSession]:
        """One unit of work: commit on success, roll back on any exception."""
        factory = self._writers if write else self._readers
        async with factory() as session:
            session.info["tenant"] = tenant
            async with session.begin():
                yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
