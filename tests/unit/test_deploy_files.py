"""The Dockerfile, .dockerignore and compose.yaml keep their essentials (read as text and YAML,
no docker needed): a pinned slim base, a non-root user, a health check, migrations then gunicorn
at start, no secret baked in; PostgreSQL and Redis with health checks the app waits for. The image
itself is built and run by tests/live/test_docker_image.py where a docker engine answers."""

from __future__ import annotations

import os
import re
import runpy
from pathlib import Path
from typing import Any

import yaml

from settings import ROOT

SECRET_NAME = re.compile(r"(SECRET|PASSWORD|TOKEN|API_KEY|PRIVATE)", re.IGNORECASE)


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per Dockerfile instruction, continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole = pending + line
        pending = ""
        keyword, _, rest = whole.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def final_stage(steps: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def test_base_images_are_pinned_slim_python_311() -> None:
    steps = instructions(ROOT / "Dockerfile")
    bases = [args.split()[0] for keyword, args in steps if keyword == "FROM"]
    assert bases
    for base in bases:
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-[a-z]+)?", base), base


def test_runtime_stage_runs_as_a_non_root_user_with_a_health_check() -> None:
    stage = final_stage(instructions(ROOT / "Dockerfile"))
    users = [args for keyword, args in stage if keyword == "USER"]
    assert users, "the runtime stage sets no USER: it would run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    checks = [args for keyword, args in stage if keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    assert "/healthz" in checks[0]
    assert "8080/healthz" in checks[0]
    command = " ".join(args for keyword, args in stage if keyword in ("CMD", "ENTRYPOINT"))
    assert "manage.py migrate" in command
    assert "exec gunicorn -c gunicorn.conf.py" in command
    assert "0.0.0.0:8080" in command
    assert ("EXPOSE", "8080") in stage


def test_dependencies_are_installed_pinned_and_no_secret_is_baked() -> None:
    steps = instructions(ROOT / "Dockerfile")
    installs = [args for keyword, args in steps if keyword == "RUN" and "pip install" in args]
    assert installs
    assert all("-c constraints.txt" in args for args in installs)
    for keyword, args in steps:
        if keyword in ("ENV", "ARG"):
            names = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", args) or args.split()[:1]
            assert not [n for n in names if SECRET_NAME.search(n)], (keyword, args)
    ignored = (ROOT / ".dockerignore").read_text().split()
    for private in (".env", ".env.*", "var", ".venv", ".git", "node_modules"):
        assert private in ignored, private


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return data


def test_compose_has_postgres_and_redis_with_health_checks_the_app_waits_for() -> None:
    services = compose()["services"]
    assert {"app", "postgres", "redis"} <= set(services)
    for name in ("postgres", "redis"):
        image = services[name]["image"]
        assert re.search(r":\d+(\.\d+)*(-[a-z]+)?$", image), f"{name}: unpinned image {image}"
        assert services[name]["healthcheck"]["test"], name
    app = services["app"]
    assert app["build"] == "."
    assert app["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    env = app["environment"]
    assert env["DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in env["DATABASE_URL"]
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert "/readyz" in " ".join(app["healthcheck"]["test"])
    # Longer than gunicorn's graceful timeout (25 s), so a stop lets streams finish.
    assert int(app["stop_grace_period"].removesuffix("s")) > 25


def test_compose_takes_every_secret_from_the_environment() -> None:
    for name, service in compose()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key):
                assert re.fullmatch(r"\$\{[A-Z_]+(:[?-][^}]*)?\}", str(value)), (name, key)


def test_gunicorn_runs_one_worker_per_cpu_unless_told(monkeypatch: Any) -> None:
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.delenv("PETSTORE_GRACEFUL_TIMEOUT", raising=False)
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert conf["workers"] == len(os.sched_getaffinity(0))
    assert conf["worker_class"] == "uvicorn_worker.UvicornWorker"
    assert conf["wsgi_app"] == "app:app_from_env()"
    assert conf["graceful_timeout"] == 25
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    monkeypatch.setenv("PETSTORE_GRACEFUL_TIMEOUT", "40")
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert (conf["workers"], conf["graceful_timeout"]) == (3, 40)
