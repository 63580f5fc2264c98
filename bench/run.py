"""Benchmark entry point: ``.venv/bin/python -m bench.run`` from the repository root.

1. Seed: a fresh SQLite DB (``manage.py migrate``), 999 synthetic pets in the shared pool
   (``manage.py seed --pets``), our server started, one more pet POSTed as the bench admin (1,000
   in all), the responses of ``GET /v1/pets`` (the first 20) and ``GET /v1/pets/{id}`` captured,
   then the DB snapshotted so every server reads the same rows.
2. One server at a time on a free loopback port (uvicorn, 1 worker, killed by PID): the bare
   Starlette ceiling, the FastAPI peer, ours with response validation on, ours with it off. Each
   endpoint gets a warm-up, then ``wrk -t2 -c32 --latency`` (GET list, GET one, POST last so its
   inserts do not change the GETs). Our rounds each start from a fresh copy of the snapshot.
3. GraphQL next to REST on our server (validation on): get one pet as ``POST /v1/graphql``
   ``pet(id)`` with the fields of the REST body, reported as a ratio to ``GET /v1/pets/{id}``.
4. The repeated list again with ``If-None-Match`` (when our list answers an ``ETag``), then ours
   under gunicorn (``make serve-prod``'s gunicorn.conf.py) with 1 and with 2 workers: list and get,
   with Redis (``BENCH_REDIS_URL``, default db 14 of the local one) when it answers, as in
   production: without it several workers cache nothing.
   Then list and get with the read cache off (``PETSTORE_READ_CACHE_SIZE=0``): wrk repeats one
   URL, so with the cache on the tables above measure cache hits; these read the database.
5. With ``BENCH_BIG=1`` (``make bench BIG=1``): the snapshot grown to ``BENCH_BIG_PETS`` (default
   1,000,000) pets with ``manage.py seed --pets`` and the list measured again, read cache off
   (its p50 against the uncached one at 1,000).
6. Tables on stdout, then every figure against its target (issue 15) with "met" / "NOT met",
   and the same figures as JSON in ``var/bench-results.json``.

Environment: ``BENCH_SECONDS`` (default 8), ``BENCH_QUICK=1`` (2-second runs),
``BENCH_LOADGEN=python`` (force the httpx fallback), ``BENCH_KEEP=1`` (keep the temp dir),
``BENCH_CHAT=0`` / ``BENCH_IMAGES=0`` (skip the chat or image sections), ``BENCH_BIG=1`` and
``BENCH_BIG_PETS`` (the list at scale; seeding a million pets takes a few minutes).
No timing assertions: this reports, it never fails on numbers.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bench import images, load
from bench.servers import ROOT, Server, running, running_gunicorn

RESULTS_PATH = ROOT / "var" / "bench-results.json"
ADMIN_USERNAME = "benchadmin"
ADMIN_PASSWORD = "benchadmin-pass-1"  # noqa: S105 - throwaway admin of a throwaway DB
SEED_PETS = 1000  # all but one by manage.py seed --pets, the last through the API
PAGE_ITEMS = 20  # the list's default page
BIG_PETS = 1_000_000
SEED_BATCH = 20_000
BUSY_FRACTION = 0.25  # CPU share used by other processes before the run that earns a note
NEW_PET: dict[str, Any] = {
    "name": "Pet 1",
    "species": "DOG",
    "ageMonths": 12,
    "price": "75.00",
    "currency": "USD",
    "status": "AVAILABLE",
    "breed": "Mixed",
    "size": "MEDIUM",
    "color": "Brown",
    "gender": "MALE",
    "goodWithKids": True,
    "goodWithPets": True,
    "description": "Friendly",
}

ENDPOINTS = ("GET /v1/pets", "GET /v1/pets/{id}", "POST /v1/pets")
EXPECTED_STATUS = {"GET /v1/pets": 200, "GET /v1/pets/{id}": 200, "POST /v1/pets": 201}
STARLETTE = "starlette"
FASTAPI = "fastapi"
OURS_ON = "ours_validate_on"
OURS_OFF = "ours_validate_off"
LABELS = {
    STARLETTE: "Starlette ceiling",
    FASTAPI: "FastAPI peer",
    OURS_ON: "ours (validation on)",
    OURS_OFF: "ours (validation off)",
}


@dataclass(frozen=True)
class Config:
    seconds: float
    warmup: float
    quick: bool
    keep: bool
    big: bool = False
    big_pets: int = BIG_PETS

    @classmethod
    def from_env(cls) -> Config:
        quick = os.environ.get("BENCH_QUICK", "") == "1"
        seconds = 2.0 if quick else float(os.environ.get("BENCH_SECONDS") or 8)
        return cls(
            seconds=seconds,
            warmup=1.0 if quick else 2.0,
            quick=quick,
            keep=os.environ.get("BENCH_KEEP", "") == "1",
            big=os.environ.get("BENCH_BIG", "") == "1",
            big_pets=int(os.environ.get("BENCH_BIG_PETS") or BIG_PETS),
        )


@dataclass(frozen=True)
class Workdir:
    root: Path
    jwt_private_key: str  # PEM (EC P-256): our server signs with it (PETSTORE_JWT_PRIVATE_KEY)
    jwt_public_key: str  # PEM: the FastAPI peer verifies our admin token with it

    @property
    def db(self) -> Path:
        return self.root / "bench.db"

    @property
    def snapshot(self) -> Path:
        return self.root / "snapshot.db"

    @property
    def peer_db(self) -> Path:
        return self.root / "peer.db"

    @property
    def payloads(self) -> Path:
        return self.root / "ceiling-payloads.json"


def signing_key_pair() -> tuple[str, str]:
    """A fresh EC P-256 key pair as PEM (private PKCS#8, public SubjectPublicKeyInfo)."""
    private = ec.generate_private_key(ec.SECP256R1())
    return (
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode(),
    )


def cpu_busy_fraction(seconds: float = 1.0) -> float | None:
    """Share of all CPUs busy over ``seconds`` (from /proc/stat); None where unavailable."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return idle, sum(fields)

    try:
        idle0, total0 = sample()
        time.sleep(seconds)
        idle1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    total = total1 - total0
    return round(1 - (idle1 - idle0) / total, 3) if total > 0 else None


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- our server -----------------------------------------------------------------------------


def ours_env(work: Workdir, validate: bool) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{work.db}",
        "PETSTORE_VAR_DIR": str(work.root),
        "PETSTORE_RATE_LIMIT": "0",
        "PETSTORE_LOGIN_RATE_LIMIT": "0",  # logins per address per minute
        "PETSTORE_LOG_LEVEL": "WARNING",
        "PETSTORE_ADMIN_USERNAME": ADMIN_USERNAME,
        "PETSTORE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "PETSTORE_VALIDATE_RESPONSES": "1" if validate else "0",
        # A configured signing key, so the FastAPI peer can verify the same admin token.
        "PETSTORE_JWT_PRIVATE_KEY": work.jwt_private_key,
    }


def migrate(env: dict[str, str]) -> None:
    """Create the schema the way operators do: ``manage.py migrate``."""
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate"],
        cwd=ROOT,
        env=env,
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py migrate failed:\n{done.stdout}\n{done.stderr}")


def admin_token(base: str) -> str:
    response = httpx.post(
        f"{base}/auth/tokens", json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD}
    )
    if response.status_code != 201:
        raise RuntimeError(f"token request: {response.status_code} {response.text[:300]}")
    token: str = response.json()["token"]
    return token


def seed_pets(env: dict[str, str], count: int) -> None:
    """Add ``count`` synthetic pets to the shared pool the way operators do:
    ``manage.py seed --pets`` (batched inserts)."""
    done = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "seed",
            "--pets",
            str(count),
            "--batch-size",
            str(SEED_BATCH),
        ],
        cwd=ROOT,
        env=env,
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py seed --pets failed:\n{done.stdout}\n{done.stderr}")


def seed(base: str, token: str) -> bytes:
    """POST one pet through the API; returns its 201 body (the ceiling's POST answer)."""
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as client:
        response = client.post(f"{base}/pets", json={**NEW_PET, "name": f"Pet {SEED_PETS}"})
    if response.status_code != 201:
        raise RuntimeError(f"seed POST: {response.status_code} {response.text[:300]}")
    return response.content


def clone_db(source: Path, target: Path) -> None:
    """Consistent copy through SQLite's backup API (WAL content included). The copy is left in
    WAL mode, as our server would set it, so every server reads the same kind of file."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=WAL")
    finally:
        src.close()
        dst.close()


@dataclass(frozen=True)
class Seeded:
    token: str
    pet_id: str
    list_body: bytes
    list_etag: str | None = None  # our list's ETag, when the server answers one


def prepare(work: Workdir) -> Seeded:
    """Migrate, seed 1,000 pets, capture the ceiling's payloads, snapshot the DB."""
    env = ours_env(work, validate=True)
    log(f"seed: manage.py migrate, seed --pets {SEED_PETS - 1}, 1 pet through our API")
    migrate(env)
    seed_pets(env, SEED_PETS - 1)
    with running("seed", "app:app_from_env", env, work.root) as server:
        token = admin_token(server.base)
        created = seed(server.base, token)
        listing = httpx.get(f"{server.base}/pets")
        pet_id = listing.json()["data"][0]["id"]
        item = httpx.get(f"{server.base}/pets/{pet_id}")
        if listing.status_code != 200 or item.status_code != 200:
            raise RuntimeError(f"capture: list {listing.status_code}, item {item.status_code}")
    clone_db(work.db, work.snapshot)
    work.payloads.write_text(
        json.dumps(
            {
                "list": listing.text,
                "item": item.text,
                "created": created.decode(),
            }
        )
    )
    log(f"seed: list {len(listing.content)} B, item {len(item.content)} B, pet {pet_id}")
    return Seeded(
        token=token,
        pet_id=pet_id,
        list_body=listing.content,
        list_etag=listing.headers.get("etag"),
    )


# --- rounds ---------------------------------------------------------------------------------


def requests_for(server: Server, seeded: Seeded) -> dict[str, load.Request]:
    return {
        "GET /v1/pets": load.Request("GET", f"{server.base}/pets"),
        "GET /v1/pets/{id}": load.Request("GET", f"{server.base}/pets/{seeded.pet_id}"),
        "POST /v1/pets": load.Request(
            "POST",
            f"{server.base}/pets",
            body=json.dumps(NEW_PET, separators=(",", ":")),
            headers={"Authorization": f"Bearer {seeded.token}"},
        ),
    }


def probe(request: load.Request) -> int:
    """One request before the load, so a wrong status is reported even if wrk hides it."""
    headers = dict(request.headers)
    if request.body is not None:
        headers["Content-Type"] = "application/json"
    response = httpx.request(request.method, request.url, content=request.body, headers=headers)
    return response.status_code


def shape_check(server: Server, seeded: Seeded, ours_base: str) -> str:
    """Does the peer's list JSON equal ours (links' host:port aside)? Informational only."""
    peer = json.loads(httpx.get(f"{server.base}/pets").text.replace(server.base, "BASE"))
    mine = json.loads(seeded.list_body.decode().replace(ours_base, "BASE"))
    if peer == mine:
        return "identical JSON"
    differing = [k for k in mine if peer.get(k) != mine[k]]
    if "data" in differing and len(peer["data"]) == len(mine["data"]):
        for theirs, ours in zip(peer["data"], mine["data"], strict=True):
            if theirs != ours:
                fields = sorted(k for k in {*theirs, *ours} if theirs.get(k) != ours.get(k))
                shown = ", ".join(f"{k}: peer {theirs.get(k)!r:.40} ours {ours.get(k)!r:.40}"
                                  for k in fields[:3])  # fmt: skip
                return f"DIFFERS from ours (item {ours.get('id')}: {shown})"
    if differing == ["links"]:
        keys = sorted(k for k in {*peer["links"], *mine["links"]}
                      if peer["links"].get(k) != mine["links"].get(k))  # fmt: skip
        return (
            f"identical items; collection links differ ({keys[0]}: peer "
            f"{peer['links'].get(keys[0])!r:.80}, ours {mine['links'].get(keys[0])!r:.80})"
        )
    first = f"{differing[0]}: peer {peer.get(differing[0])!r:.120}" if differing else "keys"
    return f"DIFFERS from ours ({first})"


@dataclass(frozen=True)
class Context:
    work: Workdir
    seeded: Seeded
    wrk: str | None
    cfg: Config


def measure(
    label: str, name: str, request: load.Request, expected: int, ctx: Context
) -> dict[str, Any]:
    """Probe, warm up, then measure one request on a running server."""
    status = probe(request)
    load.run_load(ctx.wrk, request, ctx.cfg.warmup, ctx.work.root)
    result = load.run_load(ctx.wrk, request, ctx.cfg.seconds, ctx.work.root)
    flags = result.flags
    if status != expected:
        flags.append(f"PROBE-STATUS {status}")
    p99 = "-" if result.p99_ms is None else f"{result.p99_ms:.2f}"
    log(
        f"{label:<22} {name:<18} {result.rps:>9.1f} req/s  p99 {p99} ms"
        + (f"  {' '.join(flags)}" if flags else "")
    )
    return {
        "rps": round(result.rps, 2),
        "p50_ms": None if result.p50_ms is None else round(result.p50_ms, 2),
        "p99_ms": None if result.p99_ms is None else round(result.p99_ms, 2),
        "requests": result.requests,
        "non_2xx": result.non_2xx,
        "socket_errors": result.socket_errors,
        "probe_status": status,
        "flags": flags,
        "tool": result.tool,
    }


def bench_server(
    key: str, server: Server, ctx: Context, before_writes: Callable[[], None] | None = None
) -> dict[str, dict[str, Any]]:
    """Probe, warm up, then measure each endpoint of one running server; ``before_writes`` runs
    after the GETs, while the data is still the snapshot's."""
    out: dict[str, dict[str, Any]] = {}
    for endpoint, request in requests_for(server, ctx.seeded).items():
        if request.method != "GET" and before_writes is not None:
            before_writes()
            before_writes = None
        out[endpoint] = measure(LABELS[key], endpoint, request, EXPECTED_STATUS[endpoint], ctx)
    return out


CONDITIONAL = "GET /v1/pets If-None-Match"


def bench_conditional(server: Server, ctx: Context) -> dict[str, Any] | None:
    """The repeated list as a caching client sends it: ``If-None-Match`` with the list's ETag,
    expecting ``304``. None when the list answers no ETag."""
    etag = httpx.get(f"{server.base}/pets").headers.get("etag")
    if not etag:
        log("our list answers no ETag: no conditional run")
        return None
    request = load.Request("GET", f"{server.base}/pets", headers={"If-None-Match": etag})
    return measure(LABELS[OURS_ON], CONDITIONAL, request, 304, ctx)


WORKER_COUNTS = (1, 2)
READS = ("GET /v1/pets", "GET /v1/pets/{id}")


def bench_redis() -> str | None:
    """``BENCH_REDIS_URL`` (default redis://127.0.0.1:6379/14) when it answers a PING, else None.
    Production runs its workers with Redis: without it, several workers cache nothing (their
    versions cannot be shared), so the worker comparison would measure the cache, not them."""
    url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means: run without Redis
        log(f"no Redis at {url} ({exc.__class__.__name__}): workers run without it")
        return None
    return url


def bench_workers(ctx: Context) -> dict[str, dict[str, Any]]:
    """Ours (validation on) under gunicorn as ``make serve-prod`` runs it, 1 then 2 workers,
    both with Redis when there is one (bench_redis), each run with a fresh key prefix."""
    out: dict[str, dict[str, Any]] = {}
    redis_url = bench_redis()
    for workers in WORKER_COUNTS:
        clone_db(ctx.work.snapshot, ctx.work.db)
        env = ours_env(ctx.work, validate=True)
        if redis_url:
            env["REDIS_URL"] = redis_url
            env["PETSTORE_REDIS_PREFIX"] = f"bench:{os.getpid()}:{workers}:{time.time_ns()}:"
        label = f"gunicorn {workers} worker" + ("s" if workers > 1 else "")
        with running_gunicorn(f"gunicorn-{workers}", workers, env, ctx.work.root) as srv:
            requests = requests_for(srv, ctx.seeded)
            out[str(workers)] = {e: measure(label, e, requests[e], 200, ctx) for e in READS}
    return out


UNCACHED = {"PETSTORE_READ_CACHE_SIZE": "0"}
"""The read cache off: every read goes to the database (wrk repeats one URL, so with the cache
on the tables above measure cache hits)."""


def bench_uncached(ctx: Context) -> dict[str, Any]:
    """Ours, validation on, the read cache off: list and get each read the database."""
    clone_db(ctx.work.snapshot, ctx.work.db)
    env = {**ours_env(ctx.work, validate=True), **UNCACHED}
    with running("uncached", "app:app_from_env", env, ctx.work.root) as srv:
        requests = requests_for(srv, ctx.seeded)
        return {e: measure("ours, no read cache", e, requests[e], 200, ctx) for e in READS}


def bench_big(ctx: Context, pets: int) -> dict[str, Any]:
    """The list on the snapshot grown to ``pets`` pets (manage.py seed --pets, batched), read
    cache off (bench_uncached at 1,000 pets is the reference)."""
    big = ctx.work.root / "big.db"
    clone_db(ctx.work.snapshot, big)
    env = {
        **ours_env(ctx.work, validate=True),
        **UNCACHED,
        "DATABASE_URL": f"sqlite+aiosqlite:///{big}",
    }
    started = time.monotonic()
    log(f"big: manage.py seed --pets {pets - SEED_PETS} (to {pets:,} pets; takes a while)")
    seed_pets(env, pets - SEED_PETS)
    seeded_in = time.monotonic() - started
    log(f"big: seeded in {seeded_in:.0f}s")
    with running("big", "app:app_from_env", env, ctx.work.root) as srv:
        request = requests_for(srv, ctx.seeded)["GET /v1/pets"]
        figures = measure(f"ours, {pets:,}, no cache", "GET /v1/pets", request, 200, ctx)
    return {**figures, "pets": pets, "seed_seconds": round(seeded_in, 1)}


GRAPHQL_GET_PET = "POST /v1/graphql pet(id)"
PET_SELECTION = (
    "id name species breed ageMonths size color gender goodWithKids goodWithPets price currency "
    "description status photos tenantId createdAt updatedAt"
)


def graphql_get_pet(server: Server, seeded: Seeded) -> load.Request:
    """Get one pet over GraphQL, asking for the fields the REST body carries (links aside)."""
    query = f"query($id: ID!) {{ pet(id: $id) {{ {PET_SELECTION} }} }}"
    body = json.dumps({"query": query, "variables": {"id": seeded.pet_id}}, separators=(",", ":"))
    return load.Request("POST", f"{server.base}/graphql", body=body)


def bench_graphql(server: Server, ctx: Context) -> dict[str, Any]:
    request = graphql_get_pet(server, ctx.seeded)
    status = probe(request)
    load.run_load(ctx.wrk, request, ctx.cfg.warmup, ctx.work.root)
    result = load.run_load(ctx.wrk, request, ctx.cfg.seconds, ctx.work.root)
    flags = result.flags + ([f"PROBE-STATUS {status}"] if status != 200 else [])
    log(f"{LABELS[OURS_ON]:<22} {GRAPHQL_GET_PET:<18} {result.rps:>9.1f} req/s")
    return {
        "rps": round(result.rps, 2),
        "p50_ms": None if result.p50_ms is None else round(result.p50_ms, 2),
        "p99_ms": None if result.p99_ms is None else round(result.p99_ms, 2),
        "requests": result.requests,
        "probe_status": status,
        "flags": flags,
        "tool": result.tool,
    }


def run_rounds(ctx: Context) -> dict[str, Any]:
    work, seeded = ctx.work, ctx.seeded
    results: dict[str, Any] = {}
    ceiling_env = {**os.environ, "BENCH_CEILING_PAYLOADS": str(work.payloads)}
    with running(STARLETTE, "bench.starlette_ceiling:create_app", ceiling_env, work.root) as srv:
        results[STARLETTE] = bench_server(STARLETTE, srv, ctx)

    clone_db(work.snapshot, work.peer_db)
    peer_env = {
        **os.environ,
        "BENCH_PEER_DATABASE_URL": f"sqlite+aiosqlite:///{work.peer_db}",
        "BENCH_JWT_PUBLIC_KEY": work.jwt_public_key,
    }
    with running(FASTAPI, "bench.fastapi_peer:create_app", peer_env, work.root) as srv:
        ours_base = json.loads(seeded.list_body)["links"]["self"].split("/pets")[0]
        results["fastapi_shape"] = shape_check(srv, seeded, ours_base)
        log(f"FastAPI peer list response vs ours: {results['fastapi_shape']}")
        results[FASTAPI] = bench_server(FASTAPI, srv, ctx)

    for key, validate in ((OURS_ON, True), (OURS_OFF, False)):
        clone_db(work.snapshot, work.db)
        env = ours_env(work, validate)
        migrate(env)
        with running(key, "app:app_from_env", env, work.root) as srv:
            if key == OURS_ON:

                def conditional(srv: Server = srv) -> None:
                    results["conditional"] = bench_conditional(srv, ctx)

                results[key] = bench_server(key, srv, ctx, before_writes=conditional)
                results["graphql"] = bench_graphql(srv, ctx)
            else:
                results[key] = bench_server(key, srv, ctx)
    results["uncached"] = bench_uncached(ctx)
    results["workers"] = bench_workers(ctx)
    if ctx.cfg.big:
        results["big"] = bench_big(ctx, ctx.cfg.big_pets)
    return results


# --- report ---------------------------------------------------------------------------------


def _ratio(value: float, reference: float | None) -> float | None:
    return round(value / reference, 3) if reference else None


def build_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for endpoint in ENDPOINTS:
        ceiling = results[STARLETTE][endpoint]["rps"]
        peer = results[FASTAPI][endpoint]["rps"]
        for key in (STARLETTE, FASTAPI, OURS_ON, OURS_OFF):
            figures = results[key][endpoint]
            rows.append(
                {
                    "endpoint": endpoint,
                    "server": key,
                    "label": LABELS[key],
                    **figures,
                    "vs_starlette": _ratio(figures["rps"], ceiling),
                    "vs_fastapi": _ratio(figures["rps"], peer),
                }
            )
    return rows


def print_table(rows: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    def fmt(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    print()
    shape = (
        f"-t{load.THREADS} -c{load.CONNECTIONS} --latency"
        if meta["load_tool"] == "wrk"
        else f"{load.CONNECTIONS} concurrent connections"
    )
    print(
        f"Pet Store benchmark - {meta['load_tool']} {shape}, "
        f"{meta['seconds']:g}s per run after {meta['warmup_seconds']:g}s warm-up, "
        f"{meta['cpus']} CPUs (load generator shares them)"
    )
    header = f"{'server':<24}{'req/s':>10}{'p99 ms':>10}{'vs Starlette':>14}{'vs FastAPI':>12}"
    for endpoint in ENDPOINTS:
        items = f" ({PAGE_ITEMS} items of {meta['seed_pets']:,})"
        print(f"\n{endpoint}" + (items if endpoint == "GET /v1/pets" else ""))
        print(header + "  flags")
        print("-" * (len(header) + 7))
        for row in (r for r in rows if r["endpoint"] == endpoint):
            print(
                f"{row['label']:<24}{row['rps']:>10.1f}{fmt(row['p99_ms'], '.2f'):>10}"
                f"{fmt(row['vs_starlette'], '.3f'):>13}x{fmt(row['vs_fastapi'], '.2f'):>11}x"
                f"  {' '.join(row['flags'])}"
            )
    graphql = meta.get("graphql")
    if graphql:
        print("\nGet one pet, GraphQL next to REST (ours, validation on)")
        print(f"{'protocol':<34}{'req/s':>10}{'p99 ms':>10}{'vs REST':>10}  flags")
        print("-" * 71)
        rest = graphql["rest"]
        for label, figures in (("REST  GET /v1/pets/{id}", rest),
                               (f"GraphQL {GRAPHQL_GET_PET}", graphql["graphql"])):  # fmt: skip
            print(
                f"{label:<34}{figures['rps']:>10.1f}{fmt(figures['p99_ms'], '.2f'):>10}"
                f"{fmt(_ratio(figures['rps'], rest['rps']), '.3f'):>9}x"
                f"  {' '.join(figures['flags'])}"
            )
    flagged = [r for r in rows if r["flags"]]
    print()
    if flagged:
        print(
            f"WARNING: {len(flagged)} run(s) had non-2xx responses, socket errors or a bad "
            "probe status; their req/s do not measure successful requests."
        )
    busy = [v for v in (meta["cpu_busy_before"], meta["cpu_busy_after"]) if v is not None]
    if busy and max(busy) > BUSY_FRACTION:
        print(
            f"NOTE: other processes kept the CPUs busy around the run ({max(busy):.0%} just "
            "before or after it); figures are noisier than usual, re-run on an idle box."
        )
    if meta["load_tool"] != "wrk":
        print(
            "NOTE: Python load generator used (no wrk): figures are client-bound and not "
            "comparable with wrk runs."
        )
    print(f"FastAPI peer list response vs ours: {meta['fastapi_shape']}")
    print(f"JSON: {RESULTS_PATH}")


LIST = "GET /v1/pets"
GET_ONE = "GET /v1/pets/{id}"


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _line(label: str, figures: dict[str, Any], reference: float | None, width: int = 34) -> str:
    return (
        f"{label:<{width}}{figures['rps']:>10.1f}{_fmt(figures['p50_ms'], '.2f'):>9}"
        f"{_fmt(figures['p99_ms'], '.2f'):>9}{_fmt(_ratio(figures['rps'], reference), '.3f'):>10}x"
        f"  {' '.join(figures['flags'])}"
    )


def print_production(results: dict[str, Any], meta: dict[str, Any]) -> None:
    """The repeated (cacheable) list, 1 vs 2 gunicorn workers, the list at scale."""
    head = f"{'':<34}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'ratio':>11}  flags"
    ceiling = results[STARLETTE][LIST]["rps"]
    print("\nRepeated list, same URL (ours, validation on); ratio to the Starlette ceiling")
    print(head)
    print("-" * 80)
    print(_line("no If-None-Match: 200 + body", results[OURS_ON][LIST], ceiling))
    conditional = results.get("conditional")
    if conditional:
        print(_line("If-None-Match: 304, no body", conditional, ceiling))
    else:
        print("If-None-Match: not run (the list answers no ETag)")

    workers = results["workers"]
    print(
        "\nWorkers: ours under gunicorn (make serve-prod), validation on, with Redis when one "
        "answers; ratio to 1 worker"
    )
    print(head)
    print("-" * 80)
    for endpoint in READS:
        one = workers["1"][endpoint]["rps"]
        for count in WORKER_COUNTS:
            name = f"{endpoint}, {count} worker" + ("s" if count > 1 else "")
            print(_line(name, workers[str(count)][endpoint], one))

    uncached = results["uncached"]
    print(
        "\nWithout the read cache (ours, validation on, PETSTORE_READ_CACHE_SIZE=0): every "
        "request reads the database; ratio to the FastAPI peer"
    )
    print(head)
    print("-" * 80)
    for endpoint in READS:
        print(_line(endpoint, uncached[endpoint], results[FASTAPI][endpoint]["rps"]))

    print(
        "\nList at scale (ours, validation on, read cache off, 1 worker); ratio of p50 to the "
        "one at 1,000"
    )
    small = uncached[LIST]
    print(f"{'':<34}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'p50 x':>11}  flags")
    print("-" * 80)
    big = results.get("big")
    for name, figures in ((f"{meta['seed_pets']:,} pets", small), ("", big)):
        if figures is None:
            continue
        p50 = _ratio(figures["p50_ms"], small["p50_ms"]) if figures["p50_ms"] else None
        print(
            (name or f"{figures['pets']:,} pets").ljust(34)
            + f"{figures['rps']:>10.1f}{_fmt(figures['p50_ms'], '.2f'):>9}"
            + f"{_fmt(figures['p99_ms'], '.2f'):>9}{_fmt(p50, '.3f'):>10}x"
            + f"  {' '.join(figures['flags'])}"
            + (f"  (seeded in {figures['seed_seconds']:.0f}s)" if name == "" else "")
        )
    if big is None:
        print(f"{BIG_PETS:,} pets: not run (make bench BIG=1; seeding takes a few minutes)")


def _target(
    figure: str, value: float | None, unit: str, target: str, ok: bool | None, flagged: bool
) -> dict[str, Any]:
    verdict = "not run" if ok is None else ("met" if ok else "NOT met")
    if flagged and ok is not None:
        verdict += " (flagged run)"
    return {"figure": figure, "value": value, "unit": unit, "target": target, "verdict": verdict}


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every figure issue 15 sets a target for, measured in this run."""
    on, off = results[OURS_ON], results[OURS_OFF]
    peer, ceiling = results[FASTAPI], results[STARLETTE]
    out = []

    def flagged(*runs: dict[str, Any] | None) -> bool:
        return any(run is not None and run["flags"] for run in runs)

    for endpoint, name in ((LIST, "list"), (GET_ONE, "get by id")):
        ratio = _ratio(on[endpoint]["rps"], peer[endpoint]["rps"])
        out.append(
            _target(f"{name} vs FastAPI peer", ratio, "x", ">= 2.00x",
                    None if ratio is None else ratio >= 2.0,
                    flagged(on[endpoint], peer[endpoint]))
        )  # fmt: skip
        cold = results["uncached"][endpoint]
        ratio = _ratio(cold["rps"], peer[endpoint]["rps"])
        out.append(
            _target(f"{name} vs peer, no read cache", ratio, "x", ">= 2.00x",
                    None if ratio is None else ratio >= 2.0, flagged(cold, peer[endpoint]))
        )  # fmt: skip
    cached = results.get("conditional") or on[LIST]
    how = "If-None-Match" if results.get("conditional") else "200"
    ratio = _ratio(cached["rps"], ceiling[LIST]["rps"])
    out.append(
        _target(f"cached list ({how}) vs Starlette", ratio, "x", ">= 0.35x",
                None if ratio is None else ratio >= 0.35, flagged(cached, ceiling[LIST]))
    )  # fmt: skip
    workers = results["workers"]
    for endpoint, name in ((LIST, "list"), (GET_ONE, "get")):
        one, two = workers["1"][endpoint], workers["2"][endpoint]
        ratio = _ratio(two["rps"], one["rps"])
        out.append(
            _target(f"2 workers vs 1 ({name})", ratio, "x", ">= 1.70x",
                    None if ratio is None else ratio >= 1.7, flagged(one, two))
        )  # fmt: skip
    for endpoint, name in ((LIST, "list"), (GET_ONE, "get")):
        p99 = on[endpoint]["p99_ms"]
        out.append(
            _target(f"p99 {name}, 32 connections", p99, "ms", "<= 25 ms",
                    None if p99 is None else p99 <= 25.0, flagged(on[endpoint]))
        )  # fmt: skip
    big, small = results.get("big"), results["uncached"][LIST]
    ratio = _ratio(big["p50_ms"], small["p50_ms"]) if big and big["p50_ms"] else None
    pets = big["pets"] if big else BIG_PETS
    out.append(
        _target(f"list p50 at {pets:,} vs 1,000 (no cache)", ratio, "x", "<= 1.50x",
                None if ratio is None else ratio <= 1.5, flagged(big, small))
    )  # fmt: skip
    for endpoint, name in ((LIST, "list"), (GET_ONE, "get")):
        cost = 1 - on[endpoint]["rps"] / off[endpoint]["rps"] if off[endpoint]["rps"] else None
        value = None if cost is None else round(100 * cost, 1)
        out.append(
            _target(f"validation cost ({name})", value, "%", "<= 15%",
                    None if value is None else value <= 15.0, flagged(on[endpoint], off[endpoint]))
        )  # fmt: skip
    return out


def print_targets(rows: list[dict[str, Any]]) -> None:
    print("\nTargets (issue 15): this run's figures")
    print(f"{'figure':<42}{'measured':>10}  {'target':<10}  verdict")
    print("-" * 80)
    for row in rows:
        value = row["value"]
        if value is None:
            shown = "-"
        elif row["unit"] == "x":
            shown = f"{value:.2f}x"
        elif row["unit"] == "ms":
            shown = f"{value:.1f} ms"
        else:
            shown = f"{value:.1f}%"
        print(f"{row['figure']:<42}{shown:>10}  {row['target']:<10}  {row['verdict']}")
    if any(r["unit"] == "%" and r["value"] is not None and r["value"] < 0 for r in rows):
        print("(a negative validation cost is noise: the run with validators was the faster one)")


def write_json(rows: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_PATH.write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")


def main() -> int:
    cfg = Config.from_env()
    wrk = load.ensure_wrk()
    tool = load.wrk_version(wrk) if wrk else "python-httpx fallback"
    log(f"load generator: {tool}; {cfg.seconds:g}s runs, {cfg.warmup:g}s warm-ups")
    root = Path(tempfile.mkdtemp(prefix="petstore-bench-"))
    private, public = signing_key_pair()
    work = Workdir(root=root, jwt_private_key=private, jwt_public_key=public)
    busy_before = cpu_busy_fraction()
    started = datetime.now(UTC)
    try:
        seeded = prepare(work)
        results = run_rounds(Context(work, seeded, wrk, cfg))
    finally:
        if cfg.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    meta = {
        "started": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "load_tool": "wrk" if wrk else "python-httpx",
        "load_tool_version": tool,
        "threads": load.THREADS,
        "connections": load.CONNECTIONS,
        "seconds": cfg.seconds,
        "warmup_seconds": cfg.warmup,
        "quick": cfg.quick,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "seed_pets": SEED_PETS,
        "list_bytes": len(seeded.list_body),
        "fastapi_shape": results.pop("fastapi_shape"),
        "graphql": {
            "rest": results[OURS_ON]["GET /v1/pets/{id}"],
            "graphql": results["graphql"],
            "graphql_vs_rest": _ratio(
                results["graphql"]["rps"], results[OURS_ON]["GET /v1/pets/{id}"]["rps"]
            ),
        },
        "cpu_busy_before": busy_before,
        "cpu_busy_after": cpu_busy_fraction(),
    }
    results.pop("graphql")
    goals = targets(results)
    meta["conditional"] = results.get("conditional")
    meta["workers"] = results["workers"]
    meta["big"] = results.get("big")
    meta["targets"] = goals
    meta["cpu_busy_after"] = cpu_busy_fraction()
    rows = build_rows(results)
    write_json(rows, meta)
    print_table(rows, meta)
    print_production(results, meta)
    print_targets(goals)
    if os.environ.get("BENCH_CHAT", "1") != "0":  # chat streams (bench/chat.py); BENCH_CHAT=0 skips
        from bench import chat

        chat.main()
    if os.environ.get("BENCH_IMAGES", "1") != "0":  # image uploads (bench/images.py)
        images.report(images.run(quick=cfg.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
