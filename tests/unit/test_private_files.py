"""Secrets and logs (issue 11, item 9): var/, the SQLite file and its -wal/-shm, and the key
files are owner-only; no engine writes bound parameters into an error or a log."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from manage import migrate
from models.database import Database
from settings import Settings, normalize_database_url


@pytest.fixture
def lax_umask() -> Iterator[None]:
    """The usual 022: files would be world-readable unless the server says otherwise."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> str:
    return oct(path.stat().st_mode & 0o777)


def test_var_the_database_and_the_key_are_owner_only(tmp_path: Path, lax_umask: None) -> None:
    var = tmp_path / "deep" / "var"
    settings = Settings.from_env({"PETSTORE_VAR_DIR": str(var)})  # generates var/jwt-secret
    assert _mode(var) == "0o700"
    assert _mode(var / "jwt-secret") == "0o600"
    migrate(settings)
    database = var / "petstore.db"
    assert _mode(database) == "0o600"

    async def write_something() -> None:
        db = Database(settings.database_url)
        try:
            await db.run("", lambda s: s.execute(text("CREATE TABLE scratch (x int)")), write=True)
            assert _mode(database.with_name("petstore.db-wal")) == "0o600"
            assert _mode(database.with_name("petstore.db-shm")) == "0o600"
        finally:
            await db.dispose()

    asyncio.run(write_something())


def test_an_existing_database_file_is_made_owner_only(tmp_path: Path, lax_umask: None) -> None:
    database = tmp_path / "old.db"
    database.touch(mode=0o644)
    assert _mode(database) == "0o644"
    Database(normalize_database_url(f"sqlite:///{database}"))
    assert _mode(database) == "0o600"


def test_errors_never_carry_bound_values(settings: Settings) -> None:
    secret = "card-4242424242424242-secret"

    async def fail() -> str:
        db = Database(settings.database_url)
        try:
            await db.run(
                "",
                lambda s: s.execute(
                    text("SELECT x FROM no_such_table WHERE x = :v"), {"v": secret}
                ),
            )
        except DBAPIError as exc:
            return str(exc)
        finally:
            await db.dispose()
        raise AssertionError("the statement should have failed")

    message = asyncio.run(fail())
    assert "no_such_table" in message
    assert secret not in message
    assert "hidden" in message
