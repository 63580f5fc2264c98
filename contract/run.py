"""Contract fuzzing: start a live uvicorn server on a fresh database, log in as an admin of the
tenant the spec's examples use, and run Schemathesis with every check against spec/openapi.yaml
(the Store API, under /v1) and then spec/admin.yaml (the Admin API, under /v1/admin, as the same
admin), once per seed (``SEEDS``), each module's time budget (``TIME_BUDGET``,
``ADMIN_TIME_BUDGET``) split between the seeds. The run fails if any Schemathesis run fails or if
the server logged an error or a traceback.

Usage: python -m contract.run [schemathesis options]
  DATABASE_URL        selects PostgreSQL (its public schema is reset)
  CONTRACT_SEEDS      seeds, comma-separated (default: SEEDS)
  CONTRACT_MAX_TIME   seconds for all seeds together, Store API (default: TIME_BUDGET)
  CONTRACT_ADMIN_MAX_TIME   the same for the Admin API (default: ADMIN_TIME_BUDGET)
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

import httpx
import yaml

from contract.statuses import ADMIN_OVERRIDES, OVERRIDES, positive_statuses, schemathesis_operations
from manage import migrate, reset_postgres
from models.database import Database
from services.accounts.users import ensure_admin
from settings import ROOT, Settings, normalize_database_url

ADMIN_USER, ADMIN_PASSWORD = "contract-admin", "contract-admin-password"
SEEDS = (20261125, 20261202)
TIME_BUDGET = 130  # seconds for all seeds; each run spends ~25 s of it on the coverage phase
ADMIN_TIME_BUDGET = 44  # the Admin API's 8 operations: 22 s per seed
SPEC = ROOT / "spec" / "openapi.yaml"
ADMIN_SPEC = ROOT / "spec" / "admin.yaml"
CONFIG = ROOT / "contract" / "schemathesis.toml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until_up(base: str, server: subprocess.Popen[bytes], timeout: float = 90) -> None:
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


def _token(base: str, tenant: str, username: str, password: str) -> str:
    login = httpx.post(
        f"{base}/auth/tokens",
        json={"username": username, "password": password},
        headers={"X-Tenant-ID": tenant},
    )
    login.raise_for_status()
    return str(login.json()["token"])


def _example_tenant(spec: dict[str, Any]) -> str:
    """The X-Tenant-ID the spec's examples use (the examples phase sends it)."""
    return str(spec["components"]["parameters"]["TenantId"]["example"])


def _ensure_admin(url: str, tenant: str) -> None:
    """The fuzzing admin, an account of the example tenant (as an operator would create one)."""

    async def create() -> None:
        db = Database(url)
        try:
            await ensure_admin(db, tenant, ADMIN_USER, ADMIN_PASSWORD)
        finally:
            await db.dispose()

    asyncio.run(create())


def _register(base: str, tenant: str, name: str) -> tuple[str, str]:
    """An ordinary account of ``tenant``: (its id, a token)."""
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
        headers={"X-Tenant-ID": tenant},
    )
    created.raise_for_status()
    return str(created.json()["id"]), _token(base, tenant, f"contract-{name}", password)


def _write_identities(base: str, tenant: str, var: Path) -> Path:
    """A Web Fuzzing Commons auth file: the admin (who sends the fuzzing traffic) and two
    ordinary users who must never see each other's objects (object_level_authorization), all
    three in ``tenant``, so that the requests that name it reach real data instead of a 403."""
    entries = [{"name": "admin", "token": _token(base, tenant, ADMIN_USER, ADMIN_PASSWORD)}]
    for name in ("alice", "bob"):
        entries.append({"name": name, "token": _register(base, tenant, name)[1]})
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


def _base_config(spec: dict[str, Any]) -> str:
    """contract/schemathesis.toml, without its ``[[operations]]`` blocks (each with the comment
    above it) that name no operation of ``spec`` (the Store API's, for the Admin API)."""
    ids = {op.get("operationId") for item in spec["paths"].values() for op in item.values()
           if isinstance(op, dict)}  # fmt: skip
    kept: list[str] = []
    dropping = False
    for paragraph in CONFIG.read_text().rstrip("\n").split("\n\n"):
        if "\n[[operations]]" in "\n" + paragraph:
            fields = tomllib.loads(paragraph)["operations"][0]
            named = fields.get("include-operation-id")
            dropping = not (named in ids if named else fields.get("include-path") in spec["paths"])
        elif not paragraph.startswith("[operations."):
            dropping = False
        if not dropping:
            kept.append(paragraph)
    return "\n\n".join(kept) + "\n"


def write_config(
    spec: dict[str, Any],
    var: Path,
    sacrificial_user: str,
    name: str = "schemathesis.toml",
    overrides: Any = OVERRIDES,
) -> Path:
    """contract/schemathesis.toml plus what follows from the spec: the statuses valid data may get
    per operation, and X-Tenant-ID pinned (in valid data) to the tenant of the tokens.

    Delete User always targets ``sacrificial_user``: Schemathesis deletes any id it has seen, the
    fuzzing admin's own included (it comes back as an order's userId), after which every request
    of the run is a 401. The first delete answers 204, the others 404."""
    tenant = _example_tenant(spec)
    disabled = {  # operations contract/schemathesis.toml turns off get no block of their own
        block.get("include-operation-id")
        for block in tomllib.loads(CONFIG.read_text()).get("operations", [])
        if block.get("enabled") is False
    }
    statuses = positive_statuses(spec, overrides)
    table = {op: codes for op, codes in statuses.items() if op not in disabled}
    operations = schemathesis_operations(table, {"deleteUser": {"path.id": sacrificial_user}})
    derived = f"""
# ---- derived by contract/run.py from spec/openapi.yaml ----
# Valid data names the tokens' tenant whenever it sends X-Tenant-ID (a token is refused with 403
# in any other tenant, by design: tests/api/test_tenancy.py); invalid values are still generated.
[dictionaries.tenant]
values = ["{tenant}"]

[parameters]
"header.X-Tenant-ID" = {{ dictionary = "tenant", probability = 1.0 }}

# positive_data_acceptance: the statuses schema-valid data may get (contract/statuses.py).
{operations}"""
    path = var / name
    path.write_text(_base_config(spec) + derived)
    return path


# A log record starts with a JSON object (our logging), "LEVEL:" (uvicorn's own) or a timestamp
# and a level (PETSTORE_LOG_JSON=0); any other line continues the record before it (tracebacks).
_RECORD = re.compile(
    r"^(?:\{|(?P<uvicorn>[A-Z]+):\s|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (?P<plain>[A-Z]+) )"
)
_ERROR_LEVELS = {"ERROR", "CRITICAL"}


def _is_error(record: list[str]) -> bool:
    text = "\n".join(record)
    if "Traceback (most recent call last)" in text:
        return True
    first = record[0]
    if first.startswith("{"):
        try:
            entry = json.loads(first)
        except ValueError:
            return False
        return str(entry.get("level", "")).upper() in _ERROR_LEVELS or "exc" in entry
    match = _RECORD.match(first)
    level = match and (match.group("uvicorn") or match.group("plain"))
    return bool(level in _ERROR_LEVELS)


def _render(record: list[str]) -> str:
    first = record[0]
    if first.startswith("{"):
        try:
            entry = json.loads(first)
        except ValueError:
            return "\n".join(record)
        exc = entry.pop("exc", None)
        return json.dumps(entry) + (f"\n{exc}" if exc else "")
    return "\n".join(record)


def server_errors(log: str) -> list[str]:
    """The ERROR/CRITICAL records and the tracebacks in the server's output, each rendered with
    its traceback."""
    records: list[list[str]] = []
    for line in log.splitlines():
        if not records or _RECORD.match(line):
            records.append([line])
        else:
            records[-1].append(line)
    return [_render(r).rstrip() for r in records if r and _is_error(r)]


def _budgets(total: int, seeds: list[str], floor: int = 30) -> list[int]:
    return [max(floor, total // len(seeds))] * len(seeds)


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
        # Fuzzing cancels and re-orders the example pet as one client: the re-hold cooldown
        # would make those 409s.
        "PETSTORE_ORDER_REHOLD_SECONDS": "0",
        "PETSTORE_REGISTER_RATE_LIMIT": "0",  # as would registrations (20/h per address)
        "PETSTORE_ADMIN_USERNAME": ADMIN_USER,
        "PETSTORE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "PETSTORE_LOG_LEVEL": "WARNING",
    }
    spec: dict[str, Any] = yaml.safe_load(SPEC.read_text())
    seeds = (os.environ.get("CONTRACT_SEEDS") or ",".join(map(str, SEEDS))).replace(" ", "")
    seed_list = [s for s in seeds.split(",") if s]
    budgets = _budgets(int(os.environ.get("CONTRACT_MAX_TIME") or TIME_BUDGET), seed_list)
    admin_total = int(os.environ.get("CONTRACT_ADMIN_MAX_TIME") or ADMIN_TIME_BUDGET)
    admin_budgets = _budgets(admin_total, seed_list, floor=15)
    settings = Settings.from_env(env)
    if url.startswith("postgresql"):
        reset_postgres(url)
    migrate(settings)
    tenant = _example_tenant(spec)
    _ensure_admin(url, tenant)
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
    failed: list[str] = []
    try:
        _wait_until_up(base, server)
        env["PETSTORE_WFC_FILE"] = str(_write_identities(base, tenant, var))
        config = write_config(spec, var, sacrificial_user=_register(base, tenant, "carol")[0])
        admin_spec: dict[str, Any] = yaml.safe_load(ADMIN_SPEC.read_text())
        admin_config = write_config(
            admin_spec, var, "", name="schemathesis-admin.toml", overrides=ADMIN_OVERRIDES
        )
        print(
            f"Contract: seeds {', '.join(seed_list)}, {budgets[0]} s each (Admin API "
            f"{admin_budgets[0]} s each); config {config}, {admin_config}",
            flush=True,
        )
        runs = [
            ("", SPEC, config, base, budgets),
            ("admin-", ADMIN_SPEC, admin_config, f"{base}/admin", admin_budgets),
        ]
        for module, spec_path, config_path, url_base, module_budgets in runs:
            for seed, budget in zip(seed_list, module_budgets, strict=True):
                command = [
                    str(Path(sys.executable).parent / "schemathesis"),
                    "--config-file",
                    str(config_path),
                    "run",
                    str(spec_path),
                    "--url",
                    url_base,
                    "--no-color",
                    "--seed",
                    seed,
                    "--max-time",
                    str(budget),
                    "--report-junit-path",
                    f"reports/schemathesis-{module}{seed}.xml",
                    *sys.argv[1:],  # e.g. --include-path /orders --report har (debugging a run)
                ]
                print(f"=== Schemathesis, {spec_path.name}, seed {seed} ===", flush=True)
                result = subprocess.run(command, cwd=ROOT, env=env, check=False, timeout=900)
                if result.returncode != 0:
                    failed.append(
                        f"Schemathesis on {spec_path.name} with seed {seed} exited with "
                        f"{result.returncode}"
                    )
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    errors = server_errors((var / "server.log").read_text(errors="replace"))
    if errors:
        print(f"\n=== the server logged {len(errors)} error(s) ({var / 'server.log'}) ===")
        for entry in errors[:50]:
            print(entry[:4000])
        failed.append(f"the server logged {len(errors)} error(s)")
    for reason in failed:
        print(f"contract run failed: {reason}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
