"""Real server processes for tests: uvicorn in a child process on a free loopback port."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from settings import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def uvicorn_process(
    factory: str, env: dict[str, str], log: Path, *, workers: int = 1
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``uvicorn --factory FACTORY``; yields its origin and the process (a test may kill it);
    stopped by PID (SIGTERM, then SIGKILL)."""
    port = free_port()
    env = {"PETSTORE_WORKERS": str(workers), **env}  # the app knows it shares its data
    with log.open("wb") as sink:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "uvicorn", "--factory", factory, "--host", "127.0.0.1",
             "--port", str(port), "--workers", str(workers), "--lifespan", "on",
             "--no-access-log", "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    origin = f"http://127.0.0.1:{port}"
    try:
        wait_up(origin + "/", proc)
        yield origin, proc
    finally:
        stop(proc, grace=30)


def stop(proc: subprocess.Popen[bytes], grace: float) -> None:
    """Stop a server we started, by its PID: SIGTERM (unless it already exited), ``grace``
    seconds to finish, then SIGKILL."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def child_pids(pid: int) -> list[int]:
    """The direct children of ``pid`` (Linux: /proc/<pid>/task/*/children)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


@contextmanager
def gunicorn_process(
    env: dict[str, str], log: Path, *, workers: int = 2, extra: tuple[str, ...] = ()
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Production mode as ``make serve-prod`` runs it: gunicorn with ./gunicorn.conf.py (uvicorn
    workers, graceful shutdown) on a free loopback port. Yields its origin and the master process;
    stopped by PID (SIGTERM, then SIGKILL) unless the test already stopped it."""
    port = free_port()
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    with log.open("wb") as sink:
        proc = subprocess.Popen(  # noqa: S603 - our own venv's gunicorn
            [gunicorn, "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{port}", "-w", str(workers),
             *extra],
            cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    origin = f"http://127.0.0.1:{port}"
    try:
        wait_up(origin + "/healthz", proc)
        deadline = time.monotonic() + 90  # every worker booted (the first may answer alone)
        while len(child_pids(proc.pid)) < workers and time.monotonic() < deadline:
            time.sleep(0.1)
        yield origin, proc
    finally:
        stop(proc, grace=60)
