"""Where one hot request spends its time, with pyinstrument: ``python -m bench.profile [PATH] [N]``.

Runs ``GET PATH`` (default ``/v1/pets``) N times (default 2,000) through the real app (httpx's
ASGI transport: every middleware, request and response validation on) against DATABASE_URL
(default: var/petstore.db; seed it first), after a warm-up, under pyinstrument. Prints the call
tree (frames under 1% hidden) and writes it as HTML to ``var/profile-<name>.html``, so a change
can be profiled before and after ("Measured decisions" in the README).
"""

from __future__ import annotations

import asyncio
import re
import sys
import time

import httpx
from pyinstrument import Profiler

from app import create_app
from settings import ROOT, Settings


async def main(path: str, n: int) -> None:
    app = create_app(Settings.from_env({"PETSTORE_RATE_LIMIT": "0", **_env()}))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        if "{id}" in path:
            first = (await client.get("/v1/pets?limit=1")).json()
            path = path.replace("{id}", first["data"][0]["id"])
        for _ in range(100):
            r = await client.get(path)
            assert r.status_code == 200, (r.status_code, r.text[:300])
        profiler = Profiler(interval=0.0002, async_mode="disabled")
        start = time.perf_counter()
        with profiler:
            for _ in range(n):
                await client.get(path)
        took = (time.perf_counter() - start) / n * 1000
    print(f"GET {path}: {took:.3f} ms/request in process (profiled), {n} requests")
    print(profiler.output_text(unicode=True, color=False, show_all=False, time="percent_of_total"))
    name = re.sub(r"[^A-Za-z0-9]+", "-", path).strip("-")[:60]
    out = ROOT / "var" / f"profile-{name}.html"
    out.parent.mkdir(exist_ok=True)
    out.write_text(profiler.output_html())
    print(f"HTML: {out}")


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


if __name__ == "__main__":
    asyncio.run(
        main(
            sys.argv[1] if len(sys.argv) > 1 else "/v1/pets",
            int(sys.argv[2]) if len(sys.argv) > 2 else 2000,
        )
    )
