"""The production image (Dockerfile) built and run: it starts as a non-root user, migrates its
database, serves the API under gunicorn, reports healthy to docker's HEALTHCHECK and stops
cleanly on SIGTERM. Needs a docker engine: skipped, saying why, where ``docker info`` fails (the
docker CLI alone is not enough). tests/unit/test_deploy_files.py checks the files themselves."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from settings import ROOT

BUILD_TIMEOUT = 1200
JWT = "docker-smoke-test-secret-that-is-long-enough"
DOCKER = shutil.which("docker") or "docker"


def docker(*args: str, timeout: float = 120, check: bool = True) -> str:
    done = subprocess.run(  # noqa: S603 - the docker CLI with our own arguments
        [DOCKER, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {done.returncode}\n{done.stderr[-3000:]}")
    return done.stdout.strip()


def engine_unavailable() -> str | None:
    """Why the image cannot be built here, or None when a docker engine answers."""
    if shutil.which("docker") is None:
        return "no docker CLI on this machine"
    try:
        info = subprocess.run(  # noqa: S603 - the docker CLI, fixed arguments
            [DOCKER, "info"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "docker CLI present, but `docker info` timed out: no engine reachable"
    if info.returncode != 0:
        reason = (info.stderr.strip().splitlines() or ["(no message)"])[-1]
        return f"docker CLI present, but no engine reachable (`docker info`: {reason})"
    return None


pytestmark = pytest.mark.skipif(
    (why := engine_unavailable()) is not None, reason=why or "docker engine reachable"
)


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    tag = f"petstore-smoke:{uuid.uuid4().hex[:8]}"
    docker("build", "-t", tag, str(ROOT), timeout=BUILD_TIMEOUT)
    try:
        yield tag
    finally:
        docker("rmi", "-f", tag, check=False)


def test_image_serves_as_non_root_reports_healthy_and_stops_on_sigterm(image: str) -> None:
    name = f"petstore-smoke-{uuid.uuid4().hex[:8]}"
    docker("run", "-d", "--name", name, "-p", "127.0.0.1::8080",
           "-e", f"PETSTORE_JWT_SECRET={JWT}", "-e", "WEB_CONCURRENCY=2", image)  # fmt: skip
    try:
        port = docker("port", name, "8080/tcp").splitlines()[0].rsplit(":", 1)[1]
        origin = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(origin + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            state = docker("inspect", "-f", "{{.State.Status}}", name)
            assert state == "running", docker("logs", name, check=False)
            assert time.monotonic() < deadline, docker("logs", name, check=False)
            time.sleep(0.5)
        ready = httpx.get(origin + "/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["database"] == "ok"  # migrated at start
        pets = httpx.get(origin + "/v1/pets", timeout=10)
        assert pets.status_code == 200, pets.text
        assert docker("exec", name, "id", "-u") != "0"
        while docker("inspect", "-f", "{{.State.Health.Status}}", name) != "healthy":
            assert time.monotonic() < deadline + 60, docker("logs", name, check=False)
            time.sleep(1)
        docker("stop", "-t", "30", name, timeout=60)  # SIGTERM: gunicorn's graceful stop
        assert docker("inspect", "-f", "{{.State.ExitCode}}", name) == "0"
    finally:
        docker("rm", "-f", name, check=False)
