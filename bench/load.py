"""Load generation: wrk (preferred) or an asyncio + httpx fallback, both reduced to LoadResult.

wrk is installed with apt-get when missing and running as root; ``BENCH_LOADGEN=python`` forces the
fallback (whose figures are NOT comparable with wrk's: the Python client is the bottleneck).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

THREADS = 2
CONNECTIONS = 32

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


@dataclass(frozen=True)
class Request:
    """One benchmarked request: method, absolute URL, optional JSON body and extra headers."""

    method: str
    url: str
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class LoadResult:
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    requests: int
    non_2xx: int = 0
    socket_errors: int = 0
    tool: str = "wrk"
    raw: str = ""

    @property
    def flags(self) -> list[str]:
        notes = []
        if self.non_2xx:
            notes.append(f"NON-2XX x{self.non_2xx}")
        if self.socket_errors:
            notes.append(f"SOCKET-ERRORS x{self.socket_errors}")
        if self.requests == 0:
            notes.append("NO-REQUESTS")
        return notes


def ensure_wrk() -> str | None:
    """Path of wrk, installing the Debian package when possible; None means use the fallback."""
    if os.environ.get("BENCH_LOADGEN", "").lower() == "python":
        return None
    found = shutil.which("wrk")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "wrk"]
    for steps in ([install], [["apt-get", "update", "-qq"], install]):
        if all(
            subprocess.run(s, env=env, check=False, capture_output=True).returncode == 0
            for s in steps
        ):
            break
    return shutil.which("wrk")


def wrk_version(wrk: str) -> str:
    out = subprocess.run([wrk, "--version"], check=False, capture_output=True, text=True)
    return (out.stdout + out.stderr).splitlines()[0].strip() if out.stdout or out.stderr else "?"


def _lua_string(value: str) -> str:
    level = "="
    while f"]{level}]" in value:
        level += "="
    return f"[{level}[{value}]{level}]"


def write_wrk_script(request: Request, path: Path) -> Path:
    """A wrk Lua script setting method, body and headers (used for POST)."""
    lines = [f'wrk.method = "{request.method}"']
    if request.body is not None:
        lines.append(f"wrk.body = {_lua_string(request.body)}")
        lines.append('wrk.headers["Content-Type"] = "application/json"')
    for name, value in request.headers.items():
        # Spaces inside the brackets: "[[" would open a Lua long string, a syntax error after
        # which wrk silently sends plain GETs (every POST figure before 2026-12-02 was that).
        lines.append(f"wrk.headers[ {_lua_string(name)} ] = {_lua_string(value)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _ms(number: str, unit: str) -> float:
    return float(number) * _UNIT_MS[unit]


def parse_wrk(output: str) -> LoadResult:
    """Requests/sec, p50/p99 (``--latency``), request count, non-2xx and socket errors."""
    rps = re.search(r"Requests/sec:\s*([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    percentiles = {
        int(p): _ms(n, u)
        for p, n, u in re.findall(
            r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, flags=re.MULTILINE
        )
    }
    return LoadResult(
        rps=float(rps.group(1)) if rps else 0.0,
        p50_ms=percentiles.get(50),
        p99_ms=percentiles.get(99),
        requests=int(total.group(1)) if total else 0,
        non_2xx=int(non2xx.group(1)) if non2xx else 0,
        socket_errors=sum(int(g) for g in sockets.groups()) if sockets else 0,
        tool="wrk",
        raw=output,
    )


def run_wrk(wrk: str, request: Request, seconds: float, script: Path | None) -> LoadResult:
    cmd = [wrk, f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s", "--latency"]
    if script is not None:
        cmd += ["-s", str(script)]
    cmd.append(request.url)
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


async def _python_load(request: Request, seconds: float) -> LoadResult:
    latencies: list[float] = []
    counts = {"non_2xx": 0, "errors": 0}
    headers = dict(request.headers)
    content = request.body.encode() if request.body is not None else None
    if content is not None:
        headers["Content-Type"] = "application/json"
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:
        start = time.perf_counter()
        deadline = start + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                try:
                    response = await client.request(
                        request.method, request.url, content=content, headers=headers
                    )
                except httpx.HTTPError:
                    counts["errors"] += 1
                    continue
                latencies.append((time.perf_counter() - sent) * 1000.0)
                if response.status_code > 399:  # same rule as wrk's "Non-2xx or 3xx"
                    counts["non_2xx"] += 1

        await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
        elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(p: float) -> float | None:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] if latencies else None

    return LoadResult(
        rps=len(latencies) / elapsed if elapsed else 0.0,
        p50_ms=pct(0.50),
        p99_ms=pct(0.99),
        requests=len(latencies),
        non_2xx=counts["non_2xx"],
        socket_errors=counts["errors"],
        tool="python-httpx",
    )


def run_python(request: Request, seconds: float) -> LoadResult:
    return asyncio.run(_python_load(request, seconds))


def run_load(wrk: str | None, request: Request, seconds: float, script_dir: Path) -> LoadResult:
    """Drive ``request`` for ``seconds`` with wrk (-t2 -c32 --latency) or the Python fallback."""
    if wrk is None:
        return run_python(request, seconds)
    script = None
    if request.method != "GET" or request.body is not None or request.headers:
        name = re.sub(r"[^A-Za-z0-9]+", "_", f"{request.method}_{request.url}")[-80:]
        script = write_wrk_script(request, script_dir / f"{name}.lua")
    return run_wrk(wrk, request, seconds, script)
