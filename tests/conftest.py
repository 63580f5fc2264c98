"""Shared fixtures: one migrated database per test session (SQLite file, or the PostgreSQL at
DATABASE_URL with a clean schema), the real Connexion app, and helpers that talk to it over HTTP.

Tests isolate their data by working in a fresh tenant (X-Tenant-ID) each, so no table is
truncated between tests."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jwt
import pytest
from sqlalchemy import update
from starlette.testclient import TestClient

from app import create_app
from auth.keys import key_ring
from manage import migrate, reset_postgres
from models import User
from models.database import Database
from settings import Settings, normalize_database_url
from tests.servers import uvicorn_process
from tests.spec.recorder import Recorder, check_modules

ADMIN = ("admin", "admin-password-1")
PASSWORD = "correct-horse-42"
SPEC_MISMATCHES = pytest.StashKey[list[str]]()


def make_settings(var_dir: Any, **env: str) -> Settings:
    url = normalize_database_url(os.environ.get("DATABASE_URL") or f"sqlite:///{var_dir}/test.db")
    base = {
        "PETSTORE_VAR_DIR": str(var_dir),
        "DATABASE_URL": url,
        "PETSTORE_RATE_LIMIT": "100000",
        "PETSTORE_LOGIN_RATE_LIMIT": "100000",
        "PETSTORE_ORDER_RATE_LIMIT": "100000",  # tests of the order budget set their own
        "PETSTORE_REGISTER_RATE_LIMIT": "100000",
        # Every test client calls from one address, which now counts against the chat budget.
        "PETSTORE_CHAT_RATE_LIMIT": "100000",
        # The in-process test client sends Host: testserver; live servers are on 127.0.0.1.
        "PETSTORE_ALLOWED_HOSTS": "testserver,localhost,127.0.0.1",
        "PETSTORE_JWT_SECRET": "test-secret-that-is-long-enough-for-hs256",
        "PETSTORE_ADMIN_USERNAME": ADMIN[0],
        "PETSTORE_ADMIN_PASSWORD": ADMIN[1],
        # Webhooks: tests deliver explicitly (delivery.run_once) instead of a background worker,
        # to local receivers, with a short backoff and attempt budget.
        "PETSTORE_WEBHOOK_WORKER": "0",
        "PETSTORE_WEBHOOK_ALLOW_LOOPBACK": "1",
        "PETSTORE_WEBHOOK_BACKOFF_SECONDS": "0.5",
        "PETSTORE_WEBHOOK_MAX_ATTEMPTS": "3",
        "PETSTORE_WEBHOOK_TIMEOUT_SECONDS": "5",
    }
    base.update(env)
    return Settings.from_env(base)


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    s = make_settings(tmp_path_factory.mktemp("var"))
    if s.database_url.startswith("postgresql"):
        reset_postgres(s.database_url)
    migrate(s)
    return s


@pytest.fixture(scope="session")
def app(settings: Settings) -> Any:
    return create_app(settings)


@pytest.fixture(scope="session")
def client(app: Any) -> Iterator[TestClient]:
    with app.test_client() as c:
        yield c


def run_db(settings: Settings, fn: Any) -> Any:
    """Run ``await fn(db)`` on a private Database (the app's engine lives on another loop)."""

    async def _go() -> Any:
        db = Database(settings.database_url)
        try:
            return await fn(db)
        finally:
            await db.dispose()

    return asyncio.run(_go())


class Api:
    """A caller in one tenant. Registers users and gets tokens through the API itself."""

    def __init__(self, client: TestClient, settings: Settings, tenant: str | None) -> None:
        self.client = client
        self.settings = settings
        self.tenant = tenant
        self._tokens: dict[str, str] = {}

    def headers(self, token: str | None = None, **extra: str) -> dict[str, str]:
        h = dict(extra)
        if self.tenant:
            h["X-Tenant-ID"] = self.tenant
        if token:
            h["Authorization"] = f"Bearer {token}"
        return h

    def request(self, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
        headers = {**self.headers(token), **kw.pop("headers", {})}
        return self.client.request(method, "/v1" + path, headers=headers, **kw)

    def register(self, username: str | None = None, **fields: Any) -> dict[str, Any]:
        username = username or f"u{uuid.uuid4().hex[:10]}"
        body = {
            "username": username,
            "email": f"{username}@example.com",
            "password": PASSWORD,
            "firstName": "Test",
            "lastName": "User",
            **fields,
        }
        r = self.request("POST", "/users", json=body)
        assert r.status_code == 201, r.text
        user: dict[str, Any] = r.json()
        user.pop("token")  # the account as Get User answers it (test_users.py reads the token)
        return user

    def login(self, username: str, password: str = PASSWORD) -> str:
        r = self.request("POST", "/auth/tokens", json={"username": username, "password": password})
        assert r.status_code == 201, r.text
        token: str = r.json()["token"]
        return token

    def user_token(self) -> tuple[dict[str, Any], str]:
        user = self.register()
        return user, self.login(user["username"])

    def admin_token(self) -> str:
        if "admin" not in self._tokens:
            user = self.register()
            tenant = self.tenant or ""

            async def promote(db: Database) -> None:
                stmt = update(User).where(User.id == uuid.UUID(user["id"])).values(role="admin")
                await db.run(tenant, lambda s: s.execute(stmt), write=True)

            run_db(self.settings, promote)
            self._tokens["admin"] = self.login(user["username"])
        return self._tokens["admin"]

    def create_pet(self, token: str, **fields: Any) -> dict[str, Any]:
        body = {**PET, **fields}
        r = self.request("POST", "/pets", token, json=body)
        assert r.status_code == 201, r.text
        pet: dict[str, Any] = r.json()
        return pet


PET = {
    "name": "Buddy",
    "species": "DOG",
    "breed": "Golden Retriever",
    "ageMonths": 24,
    "size": "LARGE",
    "gender": "MALE",
    "goodWithKids": True,
    "goodWithPets": True,
    "price": "150.00",
    "currency": "USD",
    "status": "AVAILABLE",
    "description": "Gentle and loves long walks.",
}


@pytest.fixture
def api(client: TestClient, settings: Settings) -> Api:
    """A fresh tenant per test: its data is invisible to every other test."""
    return Api(client, settings, str(uuid.uuid4()))


@pytest.fixture(scope="session")
def shared_admin_token(client: TestClient, settings: Settings) -> str:
    """Token of the admin created at startup from PETSTORE_ADMIN_* (shared pool)."""
    return Api(client, settings, None).login(*ADMIN)


def jwks_claims(client: Any, token: str, issuer: str) -> dict[str, Any]:
    """A token's claims as any third party checks them: with the JWK Set the server publishes
    at /.well-known/jwks.json (fetched through ``client``), never with our TokenService."""
    published = jwt.PyJWKSet.from_dict(client.get("/.well-known/jwks.json").json())
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt"
    key = next(k for k in published.keys if k.key_id == header["kid"])
    claims: dict[str, Any] = jwt.decode(
        token, key, algorithms=["ES256"], audience="petstore-api", issuer=issuer
    )
    return claims


def server_signed(settings: Settings, claims: dict[str, Any], **header: Any) -> str:
    """``claims`` signed ES256 with the server's current key (read from its var/ key ring, as a
    second worker would), header ``typ: at+jwt`` and its ``kid`` unless ``header`` says else:
    for tokens only their claims make invalid."""
    key = key_ring(settings).signing_key()
    headers = {"typ": "at+jwt", "kid": key.kid, **header}
    return jwt.encode(claims, key.private, algorithm="ES256", headers=headers)


def problem(
    status: int, slug: str, title: str, detail: str, instance: str, **extra: Any
) -> dict[str, Any]:
    body = {
        "type": f"https://petstoreapi.com/errors/{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    body.update(extra)
    return body


@contextmanager
def server_process(
    settings: Settings, log_dir: Any, workers: int = 1, **env_overrides: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The real server (uvicorn) in child processes on the session's database. Yields the API
    base URL and the process (tests may kill it)."""
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "PETSTORE_VAR_DIR": str(settings.var_dir),
        "PETSTORE_JWT_SECRET": settings.jwt_secret,
        "PETSTORE_RATE_LIMIT": "100000",
        "PETSTORE_LOGIN_RATE_LIMIT": "100000",
        "PETSTORE_ORDER_RATE_LIMIT": "100000",
        "PETSTORE_REGISTER_RATE_LIMIT": "100000",
        "PETSTORE_LOG_LEVEL": "WARNING",
        "PETSTORE_WEBHOOK_WORKER": "0",
        **env_overrides,
    }
    log = log_dir / f"server-{uuid.uuid4().hex[:8]}.log"
    with uvicorn_process("app:app_from_env", env, log, workers=workers) as (origin, proc):
        yield origin + "/v1", proc


@pytest.fixture(scope="session")
def live_server(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real server in 2 worker processes, for tests that need real concurrency."""
    with server_process(settings, tmp_path_factory.mktemp("live"), workers=2) as (base, _):
        yield base


# --- What the app answers, compared with what the spec declares (tests/spec/recorder.py) ---

RECORDER = Recorder()


def pytest_configure(config: pytest.Config) -> None:
    RECORDER.install()


def pytest_unconfigure(config: pytest.Config) -> None:
    RECORDER.uninstall()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a response carried a status or header its operation does not declare."""
    target = os.environ.get("PETSTORE_SPEC_RECORD")
    if target:
        RECORDER.dump(Path(target))
    if not RECORDER.seen:
        return
    mismatches = check_modules(RECORDER.seen)
    session.config.stash[SPEC_MISMATCHES] = mismatches
    if mismatches and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    mismatches = config.stash.get(SPEC_MISMATCHES, [])
    if mismatches:
        terminalreporter.section("responses the spec does not declare", red=True)
        for line in mismatches:
            terminalreporter.line(line)
        terminalreporter.line(
            f"{len(mismatches)} mismatch(es) between the app's answers in this run and "
            "spec/openapi.yaml or spec/admin.yaml (tests/spec/recorder.py): declare them in the "
            "spec."
        )
