"""Live servers for the chat tests: our app under uvicorn (a subprocess, or a thread when a test
must look at the server's counters) and the fake OpenAI-compatible upstream."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from app import create_app
from manage import migrate
from settings import Settings
from tests.conftest import ADMIN, PET, make_settings
from tests.servers import free_port, uvicorn_process, wait_up

SECRET = "live-test-secret-that-is-long-enough-for-hs256"


def server_env(var: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{var}/live.db",
        "PETSTORE_VAR_DIR": str(var),
        "PETSTORE_JWT_SECRET": SECRET,
        "PETSTORE_RATE_LIMIT": "0",
        "PETSTORE_CHAT_RATE_LIMIT": "0",
        "PETSTORE_LOGIN_RATE_LIMIT": "0",  # logins per address per minute
        "PETSTORE_REGISTER_RATE_LIMIT": "0",
        "PETSTORE_ADMIN_USERNAME": ADMIN[0],
        "PETSTORE_ADMIN_PASSWORD": ADMIN[1],
        "PETSTORE_LOG_LEVEL": "WARNING",
        **extra,
    }
    migrate(Settings.from_env(env))
    return env


class Live:
    """A running server plus a user token and an admin token for it."""

    def __init__(self, base: str, var: Path | None = None) -> None:
        self.base = base
        self.var = var  # the server's PETSTORE_VAR_DIR (its key ring lives there)
        self.admin = self.login(*ADMIN)
        name = f"live{time.monotonic_ns() % 10**9}"
        created = httpx.post(
            f"{base}/users",
            json={"username": name, "email": f"{name}@example.com", "password": "live-pass-123",
                  "firstName": "Live", "lastName": "User"},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        self.user_id = created.json()["id"]
        self.token = self.login(name, "live-pass-123")

    def login(self, username: str, password: str) -> str:
        r = httpx.post(
            f"{self.base}/auth/tokens", json={"username": username, "password": password}
        )
        assert r.status_code == 201, r.text
        return str(r.json()["token"])

    def create_pet(self, **fields: Any) -> dict[str, Any]:
        r = httpx.post(
            f"{self.base}/pets",
            json={**PET, **fields},
            headers={"Authorization": f"Bearer {self.admin}"},
        )
        assert r.status_code == 201, r.text
        pet: dict[str, Any] = r.json()
        return pet


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """Our server with the embedded answerer (no upstream), limits off."""
    var = tmp_path_factory.mktemp("live")
    with uvicorn_process("app:app_from_env", server_env(var), var / "server.log") as (origin, _):
        yield Live(origin + "/v1", var)


@pytest.fixture(scope="session")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The fake OpenAI-compatible upstream; yields its base URL (``.../v1``)."""
    var = tmp_path_factory.mktemp("upstream")
    factory = "tests.live.fake_upstream:create_app"
    with uvicorn_process(factory, dict(os.environ), var / "upstream.log") as (origin, _):
        yield origin + "/v1"


@pytest.fixture(scope="session")
def relayed(tmp_path_factory: pytest.TempPathFactory, upstream: str) -> Iterator[Live]:
    """Our server configured with the fake upstream (1 s timeout)."""
    from tests.live.fake_upstream import KEY

    var = tmp_path_factory.mktemp("relayed")
    env = server_env(
        var,
        PETSTORE_CHAT_UPSTREAM_URL=upstream,
        PETSTORE_CHAT_UPSTREAM_KEY=KEY,
        PETSTORE_CHAT_UPSTREAM_MODEL="upstream-model",
        PETSTORE_CHAT_UPSTREAM_TIMEOUT="1",
    )
    with uvicorn_process("app:app_from_env", env, var / "server.log") as (origin, _):
        yield Live(origin + "/v1", var)


@contextmanager
def threaded_server(tmp: Path, **overrides: Any) -> Iterator[tuple[str, Any]]:
    """Our app under uvicorn in a thread of this process, so a test can read its counters."""
    settings = make_settings(tmp, PETSTORE_RATE_LIMIT="0", PETSTORE_CHAT_RATE_LIMIT="0")
    migrate(settings)
    app = create_app(settings.with_overrides(**overrides))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_up(f"http://127.0.0.1:{port}/")
        yield f"http://127.0.0.1:{port}/v1", app
    finally:
        server.should_exit = True
        thread.join(timeout=15)
