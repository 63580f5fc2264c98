"""``make bench`` chat section: time to first chunk and chunks/s of SSE chat streams.

One uvicorn worker with the embedded answerer (no upstream); a raw-asyncio HTTP/1.1 client (cheap
enough to share the 2 cores) runs N concurrent users (started over the first second): each
sends ``POST /v1/chat/completions`` with ``stream: true``, notes when the first SSE event
arrives (time to first chunk, from the request written) and counts events until ``[DONE]``,
thinks, and asks again. Scenarios:

- ``chat``: 1 s think time between a user's questions (people read the answer);
- ``saturate``: no think time, every user asks again at once (the server's capacity);
- ``paced``: the answerer pauses 20 ms between pieces (a model writing 50 tokens/s), no think
  time, so N streams stay open together for seconds.

Run alone: ``.venv/bin/python -m bench.chat`` (``BENCH_QUICK=1`` for short runs).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.servers import ROOT, running

ADMIN = ("benchchat", "benchchat-pass-1")
QUESTION = "How often should I feed my kitten and what should I feed it?"
CONCURRENCY = (50, 200)
SCENARIOS = (("chat", 0, 1.0), ("saturate", 0, 0.0), ("paced", 20, 0.0))  # name, pace ms, think s


@dataclass
class StreamResult:
    ttfc_ms: float
    events: int
    ok: bool


async def one_stream(port: int, body: bytes, token: str) -> StreamResult:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Accept: text/event-stream\r\nConnection: close\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    started = time.perf_counter()
    writer.write(request)
    ttfc = None
    received = b""
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if ttfc is None and b"data: " in received[-8:] + data:
                ttfc = (time.perf_counter() - started) * 1000
            received += data
    finally:
        writer.close()
    ok = received.startswith(b"HTTP/1.1 200") and b"data: [DONE]" in received
    return StreamResult(ttfc if ttfc is not None else float("nan"), received.count(b"data: "), ok)


async def closed_loop(
    port: int, token: str, concurrency: int, seconds: float, think: float = 0.0
) -> tuple[list[StreamResult], float]:
    body = json.dumps(
        {"model": "pet-advisor-1", "stream": True,
         "messages": [{"role": "user", "content": QUESTION}]}
    ).encode()  # fmt: skip
    results: list[StreamResult] = []
    deadline = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        await asyncio.sleep(index / concurrency)  # ramp up over one second
        while time.perf_counter() < deadline:
            results.append(await one_stream(port, body, token))
            if think:
                await asyncio.sleep(think)

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return results, time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summarise(results: list[StreamResult], elapsed: float) -> dict[str, Any]:
    good = [r for r in results if r.ok]
    ttfc = [r.ttfc_ms for r in good]
    return {
        "streams": len(results),
        "failed": len(results) - len(good),
        "ttfc_p50_ms": round(statistics.median(ttfc), 1) if ttfc else None,
        "ttfc_p99_ms": round(percentile(ttfc, 0.99), 1) if ttfc else None,
        "chunks_per_s": round(sum(r.events for r in good) / elapsed, 1),
        "events_per_stream": round(statistics.mean(r.events for r in good), 1) if good else None,
        "seconds": round(elapsed, 2),
    }


def run(seconds: float | None = None) -> list[dict[str, Any]]:
    quick = os.environ.get("BENCH_QUICK", "") == "1"
    seconds = seconds or (3.0 if quick else 8.0)
    root = Path(tempfile.mkdtemp(prefix="petstore-bench-chat-"))
    rows: list[dict[str, Any]] = []
    try:
        for name, pace, think in SCENARIOS:
            env = {
                **os.environ,
                "DATABASE_URL": f"sqlite:///{root}/chat-{name}.db",
                "PETSTORE_VAR_DIR": str(root),
                "PETSTORE_RATE_LIMIT": "0",
                "PETSTORE_CHAT_RATE_LIMIT": "0",
                "PETSTORE_CHAT_PACE_MS": str(pace),
                "PETSTORE_LOG_LEVEL": "WARNING",
                "PETSTORE_ADMIN_USERNAME": ADMIN[0],
                "PETSTORE_ADMIN_PASSWORD": ADMIN[1],
            }
            subprocess.run(
                [sys.executable, "manage.py", "migrate"], cwd=ROOT, env=env, check=True,
                capture_output=True,
            )  # fmt: skip
            with running(f"chat-{name}", "app:app_from_env", env, root) as server:
                token = httpx.post(
                    f"{server.base}/auth/tokens",
                    json={"username": ADMIN[0], "password": ADMIN[1]},
                ).json()["token"]
                asyncio.run(closed_loop(server.port, token, 20, 1.0))  # warm-up
                for concurrency in CONCURRENCY:
                    results, elapsed = asyncio.run(
                        closed_loop(server.port, token, concurrency, seconds, think)
                    )
                    row = {"scenario": name, "pace_ms": pace, "think_s": think}
                    row["concurrency"] = concurrency
                    row.update(summarise(results, elapsed))
                    rows.append(row)
                    print(
                        f"[bench chat] {name:<8} {concurrency:>3} users: "
                        f"first chunk p50 {row['ttfc_p50_ms']} ms p99 {row['ttfc_p99_ms']} ms, "
                        f"{row['chunks_per_s']} chunks/s, {row['streams']} streams "
                        f"({row['failed']} failed)",
                        flush=True,
                    )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    print("\nChat streams (POST /v1/chat/completions, stream=true, embedded answerer, 1 worker)")
    header = (
        f"{'scenario':<10}{'users':>6}{'TTFC p50':>10}{'TTFC p99':>10}{'chunks/s':>10}"
        f"{'streams':>9}"
    )
    print(header + "  failed")
    print("-" * (len(header) + 8))
    for r in rows:
        print(
            f"{r['scenario']:<10}{r['concurrency']:>6}{r['ttfc_p50_ms']:>10}{r['ttfc_p99_ms']:>10}"
            f"{r['chunks_per_s']:>10}{r['streams']:>9}  {r['failed']}"
        )
    print(
        "TTFC in ms; chat = 1 s think time, saturate = none, paced = 20 ms between pieces. "
        "Target: first chunk p99 <= 100 ms at 200 concurrent streams."
    )


def main() -> int:
    from bench.run import cpu_busy_fraction

    busy = cpu_busy_fraction()
    rows = run()
    print_table(rows)
    if busy is not None and busy > 0.25:
        print(
            f"NOTE: other processes kept the CPUs {busy:.0%} busy just before the run; "
            "figures are noisier than usual, re-run on an idle box."
        )
    out = ROOT / "var" / "bench-chat.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"JSON: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
