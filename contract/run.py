"""Contract fuzzing: start a live uvicorn server on a fresh database, log in as an admin, and run
Schemathesis with every check against spec/openapi.yaml. Bounded by --max-time, fixed seed.

Usage: python -m contract.run  (DATABASE_URL selects PostgreSQL; its public schema is reset)
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from manage import migrate, reset_postgres
from settings import ROOT, Settings, normalize_database_url

ADMIN_USER, ADMIN_PASSWORD = "contract-admin", "contract-admin-password"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until_up(base: str, server: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"server exited with {server.returncode}")
        try:
            if httpx.get(f"{base}/openapi.json", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("server did not start")


def _token(base: str, username: str, password: str) -> str:
    login = httpx.post(f"{base}/auth/tokens", json={"username": username, "password": password})
    login.raise_for_status()
    return str(login.json()["token"])


def _write_identities(base: str, var: Path) -> Path:
    """A Web Fuzzing Commons auth file: the admin (who sends the fuzzing traffic) and two
    ordinary users who must never see each other's objects (object_level_authorization)."""
    entries = [{"name": "admin", "token": _token(base, ADMIN_USER, ADMIN_PASSWORD)}]
    for name in ("alice", "bob"):
        password = f"{name}-contract-password"
        created = httpx.post(
            f"{base}/users",
            json={
                "username": f"contract-{name}",
                "email": f"{name}@contract.example",
                "password": password,
                "firstName": name.title(),
                "lastName": "Peer",
            },
        )
        created.raise_for_status()
        entries.append({"name": name, "token": _token(base, f"contract-{name}", password)})
    document = {
        "schemaVersion": "1.0",
        "auth": [
            {
                "name": e["name"],
                "fixedHeaders": [{"name": "Authorization", "value": f"Bearer {e['token']}"}],
            }
            for e in entries
        ],
    }
    path = var / "identities.json"
    path.write_text(json.dumps(document))
    return path


def main() -> int:
    var = Path(tempfile.mkdtemp(prefix="petstore-contract-"))
    url = normalize_database_url(os.environ.get("DATABASE_URL") or f"sqlite:///{var}/contract.db")
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "PETSTORE_VAR_DIR": str(var),
        "PETSTORE_RATE_LIMIT": "1000000",
        "PETSTORE_CHAT_RATE_LIMIT": "0",  # the chat budget (20/min) would turn fuzzing into 429s
        "PETSTORE_LOGIN_RATE_LIMIT": "0",  # logins per address per minute
        # Fuzzing places many orders per client: the order budget (10/min) would make them 429s
        # and the cap on unpaid orders (3) 409s. A high cap keeps its counting exercised.
        "PETSTORE_ORDER_RATE_LIMIT": "0",
        "PETSTORE_ORDER_HOLD_LIMIT": "100000",
        "PETSTORE_REGISTER_RATE_LIMIT": "0",  # as would registrations (20/h per address)
        "PETSTORE_ADMIN_USERNAME": ADMIN_USER,
        "PETSTORE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "PETSTORE_LOG_LEVEL": "WARNING",
    }
    settings = Settings.from_env(env)
    if url.startswith("postgresql"):
        reset_postgres(url)
    migrate(settings)
    port = _free_port()
    base = f"http://127.0.0.1:{port}/v1"
    log = (var / "server.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "app:app_from_env",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lifespan",
            "on",
            "--no-access-log",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_until_up(base, server)
        env["PETSTORE_WFC_FILE"] = str(_write_identities(base, var))
        command = [
            str(Path(sys.executable).parent / "schemathesis"),
            "--config-file",
            str(ROOT / "contract" / "schemathesis.toml"),
            "run",
            str(ROOT / "spec" / "openapi.yaml"),
            "--url",
            base,
            "--no-color",
        ]
        max_time = os.environ.get("CONTRACT_MAX_TIME")
        if max_time:
            command += ["--max-time", max_time]
        command += sys.argv[1:]  # e.g. --include-path /orders --report har (debugging a run)
        result = subprocess.run(command, cwd=ROOT, env=env, check=False, timeout=900)
        return result.returncode
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        errors = [
            line
            for line in (var / "server.log").read_text(errors="replace").splitlines()
            if '"level": "error"' in line or '"level":"error"' in line
        ]
        if errors:
            print(f"server logged {len(errors)} errors; first: {errors[0][:2000]}")


if __name__ == "__main__":
    raise SystemExit(main())
