"""``make bench`` chat section: time to first chunk and chunks/s of SSE chat streams.

One uvicorn worker with the embedded answerer (no upstream); a raw-asyncio HTTP/1.1 client (cheap
enough to share the 2 cores) opens N concurrent streams at once and keeps N open: each client
loop sends ``POST /v1/chat/completions`` with ``stream: true``, notes when the first SSE event
arrives (time to first chunk, from the request's first byte written) and counts events until
``[DONE]``, then starts the next stream. Two pacings: ``0`` (the answer is streamed as fast as
the server can write it) and ``20`` ms between pieces (a model producing 50 tokens/s, so streams
stay open for seconds as real chat streams do).

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
PACES_MS = (0, 20)


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
    port: int, token: str, concurrency: int, seconds: float
) -> tuple[list[StreamResult], float]:
    body = json.dumps(
        {"model": "pet-advisor-1", "stream": True,
         "messages": [{"role": "user", "content": QUESTION}]}
    ).encode()  # fmt: skip
    results: list[StreamResult] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            results.append(await one_stream(port, body, token))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
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
        for pace in PACES_MS:
            env = {
                **os.environ,
                "DATABASE_URL": f"sqlite:///{root}/chat-{pace}.db",
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
            with running(f"chat-pace{pace}", "app:app_from_env", env, root) as server:
                token = httpx.post(
                    f"{server.base}/auth/tokens",
                    json={"username": ADMIN[0], "password": ADMIN[1]},
                ).json()["token"]
                asyncio.run(closed_loop(server.port, token, 20, 1.0))  # warm-up
                for concurrency in CONCURRENCY:
                    results, elapsed = asyncio.run(
                        closed_loop(server.port, token, concurrency, seconds)
                    )
                    row = {"pace_ms": pace, "concurrency": concurrency}
                    row.update(summarise(results, elapsed))
                    rows.append(row)
                    print(
                        f"[bench chat] pace {pace:>2} ms  {concurrency:>3} streams: "
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
    header = f"{'pace':>6}{'streams':>9}{'TTFC p50':>10}{'TTFC p99':>10}{'chunks/s':>10}{'done':>7}"
    print(header + "  failed")
    print("-" * (len(header) + 8))
    for r in rows:
        print(
            f"{r['pace_ms']:>4}ms{r['concurrency']:>9}{r['ttfc_p50_ms']:>10}{r['ttfc_p99_ms']:>10}"
            f"{r['chunks_per_s']:>10}{r['streams']:>7}  {r['failed']}"
        )
    print("Target: first chunk p99 <= 100 ms at 200 concurrent streams.")


def main() -> int:
    rows = run()
    print_table(rows)
    out = ROOT / "var" / "bench-chat.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"JSON: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
