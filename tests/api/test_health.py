"""/healthz and /readyz, through the real app: probes bypass the Host allow-list, readiness checks
the database, its migration head and Redis, and repeats the startup warnings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
from alembic import command
from alembic.config import Config

from app import create_app, migrations_head
from settings import ROOT, Settings
from web.health import HealthMiddleware


def test_healthz_answers_whatever_the_host(client: Any) -> None:
    # An orchestrator probes the pod by address, a Host the allow-list does not serve.
    r = client.get("/healthz", headers={"Host": "10.1.2.3:8080"})
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    assert r.headers["cache-control"] == "no-store"
    assert client.get("/v1/pets", headers={"Host": "10.1.2.3:8080"}).status_code == 400


def test_readyz_lists_each_check(client: Any) -> None:
    r = client.get("/readyz", headers={"Host": "10.1.2.3:8080"})
    assert r.status_code == 200
    assert r.json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": migrations_head(), "redis": "not configured"},
        "warnings": [],
    }
    assert client.head("/readyz").content == b""


def test_readyz_only_reads(client: Any) -> None:
    r = client.post("/readyz")
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, HEAD"


def test_readyz_repeats_the_warning_about_workers_without_redis(settings: Settings) -> None:
    app = create_app(settings.with_overrides(workers=3, redis_url=None))
    with app.test_client() as c:
        body = c.get("/readyz").json()
    assert body["status"] == "ready"  # up, but says its limits are per worker
    assert len(body["warnings"]) == 1
    assert body["warnings"][0].startswith("3 workers without REDIS_URL")


def test_a_database_behind_the_code_is_not_ready(settings: Settings, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    command.upgrade(config, "head")
    command.downgrade(config, "-1")  # one migration short of what the code expects
    app = create_app(settings.with_overrides(database_url=url, admin_username=None))
    with app.test_client() as c:
        r = c.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "not ready"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["migrations"] == "unavailable"  # the reason is logged, not shown


def test_an_unreachable_redis_is_not_ready(settings: Settings) -> None:
    app = create_app(settings.with_overrides(redis_url="redis://127.0.0.1:1/0"))
    with app.test_client() as c:
        r = c.get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["redis"] == "unavailable"
    assert r.json()["checks"]["database"] == "ok"


def _probe_app(checks: dict[str, Any]) -> Any:
    async def not_found(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("probes never reach the app")

    return HealthMiddleware(not_found, checks)


def test_a_flood_of_probes_runs_the_checks_once_per_second() -> None:
    calls = 0

    async def database() -> str:
        nonlocal calls
        calls += 1
        return "ok"

    async def go() -> None:
        transport = httpx.ASGITransport(app=_probe_app({"database": database}))
        async with httpx.AsyncClient(transport=transport, base_url="http://probe") as c:
            statuses = [(await c.get("/readyz")).status_code for _ in range(50)]
        assert statuses == [200] * 50
        assert calls == 1

    anyio.run(go)


def test_probes_during_a_hung_check_get_the_last_verdict_at_once() -> None:
    hang = anyio.Event()
    rounds = 0

    async def database() -> str:
        nonlocal rounds
        rounds += 1
        if rounds > 1:
            await hang.wait()  # the database stops answering
        return "ok"

    async def go() -> None:
        middleware = _probe_app({"database": database})
        transport = httpx.ASGITransport(app=middleware)
        async with httpx.AsyncClient(transport=transport, base_url="http://probe") as c:
            assert (await c.get("/readyz")).status_code == 200
            middleware._last = (0.0, *middleware._last[1:])  # the verdict is now stale
            async with anyio.create_task_group() as tg:
                tg.start_soon(c.get, "/readyz")  # a round that hangs (until its timeout)
                await anyio.sleep(0.05)
                with anyio.fail_after(1):  # answered from the last verdict, not queued
                    assert (await c.get("/readyz")).json()["status"] == "ready"
                hang.set()

    anyio.run(go)
