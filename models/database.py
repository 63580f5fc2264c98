"""Engines and units of work for SQLite (embedded default) and PostgreSQL.

A unit of work is one synchronous SQLAlchemy session, one transaction, run in one worker-thread
hop (``await db.run(tenant, fn)``). Measured here (wrk -t2 -c32, 2 cores):

- SQLAlchemy's asyncio extension over aiosqlite makes every driver call a thread hop (9 for a
  get by id): 206-276 list units/s with 32 concurrent callers, against 570/s for the same unit
  as one hop into a sync session.
- Running SQLite reads inline on the event loop raised list throughput from 142 to 174 req/s but
  p99 from 296 ms to 1.2 s, with timeouts: rejected for the tail.
- SQLite: one reader thread and one writer thread per process (SQLite has one writer anyway; a
  writer waiting for another process's lock never stalls reads). WAL, foreign keys on, a busy
  timeout, ``BEGIN IMMEDIATE`` for writes so a read-then-write never fails on a lock upgrade;
  reads need no explicit transaction (each statement reads one WAL snapshot).
- PostgreSQL: as many threads as pooled connections; pre-ping, READ COMMITTED, row locks.

Every engine hides bound parameters from its errors and logs (``hide_parameters``): a failing
statement must not write a password hash, a token or card data into a log line. The SQLite
file (and so its -wal and -shm, which SQLite creates with the database's mode) is owner-only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import anyio
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.engine import Connection
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from models.tenancy import (
    ALL_TENANTS,
    TenantMissingError,
    TenantSession,
    install_tenant_filter,
)
from settings import make_private_dir

T = TypeVar("T")
PRAGMAS = ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL")


def sync_url(url: str) -> str:
    """Accept an async SQLite URL too; units of work use the sync sqlite3 driver."""
    return url.replace("sqlite+aiosqlite://", "sqlite+pysqlite://", 1)


def private_sqlite_file(url: str) -> None:
    """Before SQLite opens the file of ``url``: create it (and its directory) owner-only, or
    take group and other access away from an existing one and its -wal/-shm companions.
    Nothing for other databases or an in-memory one."""
    parsed = make_url(url)
    name = parsed.database
    if parsed.get_backend_name() != "sqlite" or not name or name == ":memory:":
        return
    if name.startswith("file:"):
        return  # a URI filename: the operator chose its options
    path = Path(name)
    make_private_dir(path.parent)
    if not path.exists():
        # Never open an existing database file here: closing any descriptor of a file drops
        # every POSIX lock this process holds on it, SQLite's included (disk I/O errors and
        # corruption for the connections already open in this process).
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # empty = empty db
        except FileExistsError:
            pass
        else:
            os.close(fd)
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            mode = file.stat().st_mode & 0o777
        except FileNotFoundError:
            continue
        if mode & 0o077:
            os.chmod(file, mode & 0o700)


def engine_for(url: str, **kwargs: Any) -> Engine:
    """``create_engine`` with the settings every engine of ours has (hidden parameters; an
    owner-only SQLite file)."""
    private_sqlite_file(url)
    return create_engine(url, hide_parameters=True, **kwargs)


def _sqlite_engine(url: str, *, busy_ms: int, begin: str | None, pool_size: int) -> Engine:
    engine = engine_for(
        url,
        connect_args={"timeout": busy_ms / 1000, "check_same_thread": False},
        pool_size=pool_size,
        max_overflow=0,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module (its legacy mode defers BEGIN).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        for pragma in (*PRAGMAS, f"busy_timeout={busy_ms}"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if begin:  # writers only; readers run in autocommit, one WAL snapshot per statement
            conn.exec_driver_sql(f"BEGIN {begin}")

    return engine


WATCH_KEY = "watch"  # session.info: the mapped classes whose changes are reported after commit
CHANGED_KEY = "changed"  # session.info: tenants (or ALL_TENANTS) whose watched rows changed

CommitListener = Callable[[frozenset[object]], None]
"""Called after a write unit of work that changed watched rows, in its worker thread, with
the tenants changed (``ALL_TENANTS`` when a bulk statement of a system job cannot say which)."""


def _note_flush(session: Session, _ctx: Any) -> None:
    watched = session.info.get(WATCH_KEY)
    if not watched:
        return
    changed = session.info.setdefault(CHANGED_KEY, set())
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, watched):
            changed.add(obj.tenant_id)


def _note_bulk(state: ORMExecuteState) -> None:
    """ORM-enabled ``update(Pet)`` / ``delete(Pet)`` statements change rows no flush sees."""
    watched = state.session.info.get(WATCH_KEY)
    if not watched or not (state.is_update or state.is_delete):
        return
    mapper = state.bind_mapper
    if mapper is not None and issubclass(mapper.class_, watched):
        state.session.info.setdefault(CHANGED_KEY, set()).add(state.session.info.get("tenant"))


def _install_change_notes() -> None:
    if not event.contains(TenantSession, "after_flush", _note_flush):
        event.listen(TenantSession, "after_flush", _note_flush)
        event.listen(TenantSession, "do_orm_execute", _note_bulk)


class Database:
    """Owns the engines and runs tenant-scoped units of work, one transaction each.

    ``watch(classes, listener)``: after every write unit of work that inserted, changed or
    deleted rows of ``classes`` (through the ORM, a flush or a bulk statement), ``listener`` is
    told which tenants changed: the one place the read cache's versions are bumped, so no write
    path can forget it. It runs after the commit (also after a failed commit, to be safe: an
    extra invalidation costs one cache miss), before the unit of work returns to its caller."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = sync_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite:
            reader = _sqlite_engine(self.url, busy_ms=10_000, begin=None, pool_size=1)
            writer = _sqlite_engine(self.url, busy_ms=10_000, begin="IMMEDIATE", pool_size=1)
            self._read_limiter = anyio.CapacityLimiter(1)
            self._write_limiter = anyio.CapacityLimiter(1)
        else:
            reader = writer = engine_for(
                self.url, pool_pre_ping=True, pool_size=pool_size, max_overflow=0
            )
            self._read_limiter = self._write_limiter = anyio.CapacityLimiter(pool_size)
        self._engines = {reader, writer}
        self._reader = reader
        self.engine = writer
        install_tenant_filter()
        self._readers = sessionmaker(reader, class_=TenantSession, expire_on_commit=False)
        self._writers = sessionmaker(writer, class_=TenantSession, expire_on_commit=False)
        self._watched: tuple[type, ...] = ()
        self._listeners: list[CommitListener] = []

    def watch(self, classes: Iterable[type], listener: CommitListener) -> None:
        """Report committed changes to rows of ``classes`` to ``listener`` (see the class)."""
        _install_change_notes()
        self._watched = tuple(dict.fromkeys((*self._watched, *classes)))
        self._listeners.append(listener)

    def unit_of_work(self, tenant: object, fn: Callable[[Session], T], write: bool) -> T:
        """Synchronous: commit on success, roll back on any exception."""
        factory = self._writers if write else self._readers
        with factory() as session:
            session.info["tenant"] = tenant
            if not (write and self._watched):
                with session.begin():
                    return fn(session)
            session.info[WATCH_KEY] = self._watched
            try:
                with session.begin():
                    return fn(session)
            finally:
                changed = session.info.pop(CHANGED_KEY, None)
                if changed:
                    for listener in self._listeners:
                        listener(frozenset(changed))

    async def run(self, tenant: str, fn: Callable[[Session], T], *, write: bool = False) -> T:
        """Run ``fn(session)`` as one unit of work in a worker thread (one hop)."""
        limiter = self._write_limiter if write else self._read_limiter
        return await anyio.to_thread.run_sync(self.unit_of_work, tenant, fn, write, limiter=limiter)

    def read_unit(self, tenant: object, fn: Callable[[Connection, str], T]) -> T:
        """Synchronous: ``fn(connection, tenant)`` on a reader connection, no ORM session (no
        identity map, no tenant event): for the hot reads, whose Core statements bind the
        tenant themselves. Fails closed like a session without a tenant."""
        if not isinstance(tenant, str):
            raise TenantMissingError("a read needs one tenant")
        with self._reader.connect() as conn:
            return fn(conn, tenant)

    async def read(self, tenant: str, fn: Callable[[Connection, str], T]) -> T:
        """Run ``fn(connection, tenant)`` as one read unit in a worker thread (one hop), the
        lean path of the hot reads (services.catalogue.reads)."""
        return await anyio.to_thread.run_sync(
            self.read_unit, tenant, fn, limiter=self._read_limiter
        )

    async def run_system(self, fn: Callable[[Session], T], *, write: bool = False) -> T:
        """A unit of work across all tenants, for system jobs only (the webhook worker)."""
        limiter = self._write_limiter if write else self._read_limiter
        return await anyio.to_thread.run_sync(
            self.unit_of_work, ALL_TENANTS, fn, write, limiter=limiter
        )

    @property
    def skip_locked(self) -> bool:
        """Whether claims can use FOR UPDATE SKIP LOCKED (PostgreSQL; SQLite has one writer)."""
        return not self.is_sqlite

    async def dispose(self) -> None:
        for engine in self._engines:
            engine.dispose()
