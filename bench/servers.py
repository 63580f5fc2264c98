"""Start one server (uvicorn with 1 worker, or gunicorn as ``make serve-prod`` runs it; loopback,
free port), wait for it, always stop it by PID."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 35.0  # above gunicorn's graceful timeout: a killed master would orphan its workers


@dataclass(frozen=True)
class Server:
    name: str
    port: int
    pid: int
    log: Path

    @property
    def base(self) -> str:
        """API base URL, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"http://{HOST}:{self.port}/v1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def uvicorn_command(factory: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        factory,
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-access-log",
        "--log-level",
        "warning",
    ]


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{_tail(log)}")
        try:
            httpx.get(url, timeout=2.0)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"server not ready after {START_TIMEOUT:.0f}s:\n{_tail(log)}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's PID, SIGKILL it if it has not exited after STOP_TIMEOUT."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT)


def gunicorn_command(workers: int, port: int) -> list[str]:
    """Production mode: gunicorn with ./gunicorn.conf.py (uvicorn workers), ``workers`` of them."""
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    return [gunicorn, "-c", "gunicorn.conf.py", "-b", f"{HOST}:{port}", "-w", str(workers)]


@contextmanager
def running(name: str, factory: str, env: dict[str, str], log_dir: Path) -> Iterator[Server]:
    """Run ``uvicorn --factory FACTORY`` from the repository root until the block exits."""
    with running_command(name, lambda port: uvicorn_command(factory, port), env, log_dir) as srv:
        yield srv


@contextmanager
def running_gunicorn(
    name: str, workers: int, env: dict[str, str], log_dir: Path
) -> Iterator[Server]:
    """Run our app under gunicorn (``make serve-prod``) with ``workers`` uvicorn workers."""
    with running_command(name, lambda port: gunicorn_command(workers, port), env, log_dir) as srv:
        yield srv


@contextmanager
def running_command(
    name: str, command: Callable[[int], list[str]], env: dict[str, str], log_dir: Path
) -> Iterator[Server]:
    """Run ``command(port)`` from the repository root until the block exits."""
    port = free_port()
    log = log_dir / f"{name}.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            command(port),
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        server = Server(name=name, port=port, pid=proc.pid, log=log)
        _wait_ready(proc, f"{server.base}/pets", log)
        yield server
    finally:
        stop(proc)
