"""Image upload section of ``make bench``: time to accept a 4 MB JPEG, and the server's peak RSS
growth while 8 and then 32 clients upload 5 MB, 24-megapixel photos at once.

Each figure comes from a fresh server (uvicorn, 1 worker, SQLite, local media directory): a
small upload first (so imports and pools are warm but no large decode has touched the heap),
then the baseline RSS, then the load while /proc/<pid>/status is sampled every 10 ms.
Targets (issue 6): growth <= 200 MB at 8 uploads, and the 32-upload figure within 1.2x of it.
Standalone: ``.venv/bin/python -m bench.images``.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from bench.servers import ROOT, Server, running

ADMIN = ("benchimages", "benchimages-pass-1")
RESULTS_PATH = ROOT / "var" / "bench-images.json"
TARGET_MB_AT_8 = 200.0
TARGET_RATIO = 1.2


def log(message: str) -> None:
    print(f"[bench images {time.strftime('%H:%M:%S')}] {message}", flush=True)


def photo(size: tuple[int, int], target_bytes: int, seed: int) -> bytes:
    """A photo-like JPEG (smooth gradients plus sensor noise), the largest quality that stays
    at or under ``target_bytes`` (binary search over quality)."""
    gradient = Image.linear_gradient("L").resize(size)
    base = Image.merge(
        "RGB",
        (gradient, gradient.rotate(90).resize(size), Image.new("L", size, seed * 37 % 256)),
    )
    picture = Image.blend(base, Image.effect_noise(size, 40).convert("RGB"), 0.3)
    low, high, best = 5, 98, b""
    while low <= high:
        quality = (low + high) // 2
        out = io.BytesIO()
        picture.save(out, "JPEG", quality=quality)
        if len(out.getvalue()) <= target_bytes:
            best, low = out.getvalue(), quality + 1
        else:
            high = quality - 1
    return best


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class PeakSampler:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.01)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_kib(self.pid))


def _env(root: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{root / 'images.db'}",
        "PETSTORE_VAR_DIR": str(root),
        "PETSTORE_MEDIA_DIR": str(root / "media"),
        "PETSTORE_RATE_LIMIT": "0",
        "PETSTORE_LOG_LEVEL": "WARNING",
        "PETSTORE_ADMIN_USERNAME": ADMIN[0],
        "PETSTORE_ADMIN_PASSWORD": ADMIN[1],
    }


def _migrate(env: dict[str, str]) -> None:
    import subprocess
    import sys

    subprocess.run(
        [sys.executable, "manage.py", "migrate"], cwd=ROOT, env=env, check=True, capture_output=True
    )


def _token(server: Server) -> str:
    response = httpx.post(
        f"{server.base}/auth/tokens", json={"username": ADMIN[0], "password": ADMIN[1]}
    )
    response.raise_for_status()
    token: str = response.json()["token"]
    return token


def _client(token: str) -> httpx.Client:
    return httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=600)


def _new_pet(client: httpx.Client, base: str) -> str:
    body = {
        "name": "Bench",
        "species": "CAT",
        "ageMonths": 3,
        "price": "10.00",
        "currency": "USD",
        "status": "AVAILABLE",
    }
    response = client.post(f"{base}/pets", json=body)
    response.raise_for_status()
    pet_id: str = response.json()["id"]
    return pet_id


def _upload(client: httpx.Client, base: str, pet_id: str, data: bytes) -> float:
    started = time.perf_counter()
    response = client.post(
        f"{base}/pets/{pet_id}/images", files={"file": ("photo.jpg", data, "image/jpeg")}
    )
    elapsed = time.perf_counter() - started
    if response.status_code != 201:
        raise RuntimeError(f"upload: {response.status_code} {response.text[:300]}")
    return elapsed


def _warm(client: httpx.Client, base: str) -> None:
    small = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(small, "JPEG")
    _upload(client, base, _new_pet(client, base), small.getvalue())


def accept_time(root: Path, data: bytes, runs: int) -> dict[str, Any]:
    env = _env(root)
    with (
        running("images-p50", "app:app_from_env", env, root) as server,
        _client(_token(server)) as c,
    ):
        _warm(c, server.base)
        _upload(c, server.base, _new_pet(c, server.base), data)  # warm-up with the real size
        times = [_upload(c, server.base, _new_pet(c, server.base), data) for _ in range(runs)]
    return {
        "bytes": len(data),
        "runs": runs,
        "p50_ms": round(statistics.median(times) * 1000, 1),
        "max_ms": round(max(times) * 1000, 1),
    }


def concurrent_rss(root: Path, data: bytes, clients: int) -> dict[str, Any]:
    env = _env(root)
    with running(f"images-c{clients}", "app:app_from_env", env, root) as server:
        token = _token(server)
        with _client(token) as c:
            _warm(c, server.base)
            pets = [_new_pet(c, server.base) for _ in range(clients)]
        time.sleep(0.5)
        baseline = rss_kib(server.pid)
        started = time.perf_counter()
        with PeakSampler(server.pid) as sampler, ThreadPoolExecutor(clients) as pool:

            def one(pet_id: str) -> float:
                with _client(token) as client:
                    return _upload(client, server.base, pet_id, data)

            times = list(pool.map(one, pets))
        wall = time.perf_counter() - started
    growth = (sampler.peak - baseline) / 1024
    return {
        "clients": clients,
        "bytes": len(data),
        "baseline_mb": round(baseline / 1024, 1),
        "peak_mb": round(sampler.peak / 1024, 1),
        "growth_mb": round(growth, 1),
        "wall_s": round(wall, 2),
        "slowest_s": round(max(times), 2),
    }


def run(quick: bool = False) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="petstore-bench-images-"))
    try:
        return _run(root, quick)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run(root: Path, quick: bool) -> dict[str, Any]:
    log("building test photos (4 MB JPEG; 24-megapixel JPEG under 5 MiB)")
    four_mb = photo((3264, 2448), 4 * 1000 * 1000, 1)
    big = photo((6000, 4000), 5 * 1024 * 1024 - 64 * 1024, 2)
    _migrate(_env(root))
    log(f"photos: {len(four_mb)} B (3264x2448), {len(big)} B (6000x4000)")
    results: dict[str, Any] = {"accept_4mb": accept_time(root, four_mb, 3 if quick else 7)}
    log(f"accept a 4 MB JPEG: p50 {results['accept_4mb']['p50_ms']} ms")
    for clients in (8, 32):
        figures = concurrent_rss(root, big, clients)
        results[f"rss_{clients}"] = figures
        log(
            f"{clients} concurrent 24 MP uploads: peak RSS growth {figures['growth_mb']} MB "
            f"(baseline {figures['baseline_mb']} MB), {figures['wall_s']} s"
        )
    at8, at32 = results["rss_8"]["growth_mb"], results["rss_32"]["growth_mb"]
    results["ratio_32_to_8"] = round(at32 / at8, 2) if at8 > 0 else None
    results["targets_met"] = bool(
        at8 <= TARGET_MB_AT_8
        and results["ratio_32_to_8"] is not None
        and results["ratio_32_to_8"] <= TARGET_RATIO
    )
    RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_PATH.write_text(json.dumps(results, indent=2) + "\n")
    return results


def report(results: dict[str, Any]) -> None:
    accept, at8, at32 = results["accept_4mb"], results["rss_8"], results["rss_32"]
    print()
    print("Image uploads (fresh server per figure; decode slots from PETSTORE_IMAGE_DECODE_SLOTS)")
    print(
        f"  accept a {accept['bytes'] / 1e6:.1f} MB JPEG: p50 {accept['p50_ms']} ms "
        f"over {accept['runs']} uploads (max {accept['max_ms']} ms)"
    )
    for row in (at8, at32):
        print(
            f"  {row['clients']:>2} concurrent {row['bytes'] / 1e6:.1f} MB 24 MP uploads: peak RSS "
            f"growth {row['growth_mb']} MB (baseline {row['baseline_mb']} MB), all done in "
            f"{row['wall_s']} s"
        )
    print(
        f"  32 vs 8: {results['ratio_32_to_8']}x; targets (<= {TARGET_MB_AT_8:g} MB at 8, "
        f"<= {TARGET_RATIO}x): {'met' if results['targets_met'] else 'NOT met'}"
    )
    print(f"  JSON: {RESULTS_PATH}")


if __name__ == "__main__":
    report(run(quick=os.environ.get("BENCH_QUICK", "") == "1"))
