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

First, the burst (issue 15): ``BURST`` streams opened at the same instant, ``BURST_ROUNDS`` times,
once with a knowledge question and once with a catalogue question (the tenant has 20 pets): time
to first chunk and to ``[DONE]`` (p50/p99), against the target of first chunk p99 <= 100 ms.

Run alone: ``.venv/bin/python -m bench.chat`` (``BENCH_QUICK=1`` for short runs;
``BENCH_CHAT_ONLY=burst`` runs the burst alone).
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


CATALOGUE_QUESTION = "Which available cats are good with kids?"
BURST = 50
BURST_ROUNDS = 10
BURST_TARGET_MS = 100.0
BURST_PET: dict[str, Any] = {
    "species": "CAT",
    "ageMonths": 18,
    "price": "75.00",
    "currency": "USD",
    "status": "AVAILABLE",
    "breed": "Domestic Shorthair",
    "size": "MEDIUM",
    "goodWithKids": True,
    "goodWithPets": True,
    "description": "Friendly and playful.",
}


@dataclass
class StreamResult:
    ttfc_ms: float
    events: int
    ok: bool
    total_ms: float = float("nan")


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
    total = (time.perf_counter() - started) * 1000
    ok = received.startswith(b"HTTP/1.1 200") and b"data: [DONE]" in received
    return StreamResult(
        ttfc if ttfc is not None else float("nan"), received.count(b"data: "), ok, total
    )


def chat_body(question: str) -> bytes:
    return json.dumps(
        {"model": "pet-advisor-1", "stream": True,
         "messages": [{"role": "user", "content": question}]}
    ).encode()  # fmt: skip


async def burst(
    port: int, token: str, question: str, streams: int, rounds: int
) -> list[StreamResult]:
    """``rounds`` times: ``streams`` streams opened at the same instant (connections first, then
    every request written in the same loop turn), waiting for all of them to finish."""
    body = chat_body(question)
    results: list[StreamResult] = []
    for _ in range(rounds):
        go = asyncio.Event()

        async def one(go: asyncio.Event) -> StreamResult:
            await go.wait()
            return await one_stream(port, body, token)

        tasks = [asyncio.ensure_future(one(go)) for _ in range(streams)]
        await asyncio.sleep(0.05)  # every task is waiting on the event
        go.set()
        results.extend(await asyncio.gather(*tasks))
        await asyncio.sleep(0.3)  # the server is idle again
    return results


def summarise_burst(results: list[StreamResult]) -> dict[str, Any]:
    good = [r for r in results if r.ok]
    ttfc = [r.ttfc_ms for r in good]
    total = [r.total_ms for r in good]
    p99 = round(percentile(ttfc, 0.99), 1) if ttfc else None
    return {
        "streams": len(results),
        "failed": len(results) - len(good),
        "ttfc_p50_ms": round(statistics.median(ttfc), 1) if ttfc else None,
        "ttfc_p99_ms": p99,
        "done_p50_ms": round(statistics.median(total), 1) if total else None,
        "done_p99_ms": round(percentile(total, 0.99), 1) if total else None,
        "target_ms": BURST_TARGET_MS,
        "met": p99 is not None and p99 <= BURST_TARGET_MS and len(good) == len(results),
    }


def run_burst(root: Path, rounds: int) -> list[dict[str, Any]]:
    """The burst rows: one server (SQLite, 1 worker, limits off), 20 cats in its catalogue."""
    env = server_env(root, "burst", 0)
    subprocess.run(
        [sys.executable, "manage.py", "migrate"], cwd=ROOT, env=env, check=True,
        capture_output=True,
    )  # fmt: skip
    rows: list[dict[str, Any]] = []
    with running("chat-burst", "app:app_from_env", env, root) as server:
        token = httpx.post(
            f"{server.base}/auth/tokens", json={"username": ADMIN[0], "password": ADMIN[1]}
        ).json()["token"]
        with httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {token}"}) as c:
            for n in range(20):
                c.post("/pets", json={**BURST_PET, "name": f"Cat {n}"}).raise_for_status()
        asyncio.run(closed_loop(server.port, token, 20, 1.0))  # warm-up
        for label, question in (("knowledge", QUESTION), ("catalogue", CATALOGUE_QUESTION)):
            results = asyncio.run(burst(server.port, token, question, BURST, rounds))
            row: dict[str, Any] = {"scenario": f"burst-{label}", "concurrency": BURST}
            row.update(summarise_burst(results))
            rows.append(row)
            print(
                f"[bench chat] burst    {BURST:>3} streams at once ({label} question, "
                f"{rounds} rounds): first chunk p50 {row['ttfc_p50_ms']} ms "
                f"p99 {row['ttfc_p99_ms']} ms (target <= {BURST_TARGET_MS:.0f} ms: "
                f"{'met' if row['met'] else 'NOT met'}), [DONE] p50 {row['done_p50_ms']} ms "
                f"p99 {row['done_p99_ms']} ms, {row['streams']} streams ({row['failed']} failed)",
                flush=True,
            )
    return rows


def server_env(root: Path, name: str, pace: int) -> dict[str, str]:
    return {
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


async def closed_loop(
    port: int, token: str, concurrency: int, seconds: float, think: float = 0.0
) -> tuple[list[StreamResult], float]:
    body = chat_body(QUESTION)
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
    only = os.environ.get("BENCH_CHAT_ONLY", "")
    try:
        rows.extend(run_burst(root, 4 if quick else BURST_ROUNDS))
        for name, pace, think in SCENARIOS:
            if only == "burst":
                break
            env = server_env(root, name, pace)
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
    bursts = [r for r in rows if r["scenario"].startswith("burst-")]
    rows = [r for r in rows if not r["scenario"].startswith("burst-")]
    if bursts:
        print(f"\nChat burst ({BURST} streams opened at once, embedded answerer, 1 worker)")
        header = f"{'question':<12}{'TTFC p50':>10}{'TTFC p99':>10}{'done p50':>10}{'done p99':>10}"
        print(header + "  target")
        print("-" * (len(header) + 20))
        for r in bursts:
            verdict = "met" if r["met"] else "NOT met"
            print(
                f"{r['scenario'].removeprefix('burst-'):<12}{r['ttfc_p50_ms']:>10}"
                f"{r['ttfc_p99_ms']:>10}{r['done_p50_ms']:>10}{r['done_p99_ms']:>10}"
                f"  p99 <= {r['target_ms']:.0f} ms: {verdict}"
            )
    if not rows:
        return
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
