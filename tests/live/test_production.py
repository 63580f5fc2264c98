"""Production mode (``make serve-prod``: gunicorn + uvicorn workers, ./gunicorn.conf.py) over
real HTTP: a graceful SIGTERM lets an in-flight request and an open chat stream finish while new
connections are refused, and the master exits 0; a worker killed with SIGKILL in the middle of a
burst of orders loses no acknowledged order and leaves none half-written (the suite's database:
SQLite, or PostgreSQL with DATABASE_URL)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Order, Pet
from models.database import Database
from settings import Settings
from tests.conftest import PET, Api, run_db
from tests.live.conftest import Live, server_env
from tests.servers import child_pids, gunicorn_process

QUESTION = "Which available cats are good with kids?"
CHAT = {"model": "pet-advisor-1", "messages": [{"role": "user", "content": QUESTION}]}


def refused(port: int) -> bool:
    """Does a new connection to the port fail (nobody listens any more)?"""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except OSError:
        return True


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    """A whole HTTP/1.1 response with Content-Length (the server closes after it on shutdown)."""
    data = b""
    while b"\r\n\r\n" not in data:
        part = sock.recv(65536)
        assert part, f"connection closed before the response head: {data!r}"
        data += part
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    length = int({k.lower(): v for k, v in headers.items()}["content-length"])
    while len(body) < length:
        part = sock.recv(65536)
        assert part, f"connection closed after {len(body)} of {length} body bytes"
        body += part
    return int(lines[0].split()[1]), body


def chat_events(lines: list[str]) -> list[Any]:
    """The ``data:`` payloads of an SSE stream, ``[DONE]`` kept as a string."""
    events: list[Any] = []
    for line in lines:
        if line.startswith("data: "):
            payload = line.removeprefix("data: ")
            events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


def test_sigterm_lets_a_request_and_a_chat_stream_finish(tmp_path: Path) -> None:
    # The embedded answerer paced at 20 ms a piece: the stream lasts seconds, not microseconds.
    env = server_env(tmp_path, PETSTORE_CHAT_PACE_MS="20", PETSTORE_GRACEFUL_TIMEOUT="60")
    with gunicorn_process(env, tmp_path / "gunicorn.log", workers=2) as (origin, master):
        live = Live(origin + "/v1")
        port = int(origin.rsplit(":", 1)[1])
        # gunicorn.conf.py told the app how many workers serve it (here without Redis: a warning)
        warnings = httpx.get(origin + "/readyz", timeout=30).json()["warnings"]
        assert any("2 workers without REDIS_URL" in w for w in warnings), warnings
        whole = httpx.post(
            f"{live.base}/chat/completions",
            json=CHAT,
            headers={"Authorization": f"Bearer {live.token}"},
            timeout=60,
        )
        assert whole.status_code == 200, whole.text
        expected = whole.json()["choices"][0]["message"]["content"]

        # 1. A slow request: headers and half of a Create Pet body sent, the rest held back.
        name = f"Graceful{uuid.uuid4().hex[:6]}"
        body = json.dumps({**PET, "name": name}).encode()
        slow = socket.create_connection(("127.0.0.1", port), timeout=60)
        slow.sendall(
            b"POST /v1/pets HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {live.admin}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body[: len(body) // 2]
        )

        # 2. A chat stream, open: its first chunk has arrived, the rest has not.
        client = httpx.Client(timeout=60)
        stream_cm = client.stream(
            "POST",
            f"{live.base}/chat/completions",
            json={**CHAT, "stream": True, "stream_options": {"include_usage": True}},
            headers={"Authorization": f"Bearer {live.token}"},
        )
        stream = stream_cm.__enter__()
        assert stream.status_code == 200
        lines = stream.iter_lines()
        received = [next(lines)]
        while not received[-1].startswith("data: "):
            received.append(next(lines))
        assert "[DONE]" not in received[-1]

        # 3. SIGTERM to the master: soon nobody accepts new connections ...
        master.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while not refused(port):
            assert time.monotonic() < deadline, "still accepting connections after SIGTERM"
            time.sleep(0.05)
        assert master.poll() is None  # ... while the master waits for its workers

        # 4. ... and both in-flight exchanges complete with their whole body.
        slow.sendall(body[len(body) // 2 :])
        status, created = read_response(slow)
        slow.close()
        assert status == 201, created
        assert json.loads(created)["name"] == name

        received += list(lines)
        stream_cm.__exit__(None, None, None)
        client.close()
        events = chat_events(received)
        assert events[-1] == "[DONE]"
        chunks = events[:-1]
        pieces = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
        text = "".join(p or "" for p in pieces)
        assert text == expected
        assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
        assert chunks[-1]["usage"]["completion_tokens"] == len(chunks) - 3

        assert master.wait(timeout=90) == 0
    log = (tmp_path / "gunicorn.log").read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]


BUYERS = 4  # accounts
CLIENTS = 16  # concurrent connections placing orders
PETS = 80
KILL_AFTER = 20  # acknowledged orders before one worker gets SIGKILL


def connections(pid: int, port: int) -> list[int]:
    """The client ports of the connections to ``port`` that process ``pid`` holds open
    (ESTABLISHED, Linux /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").glob("*"):
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    peers = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01" and fields[9] in inodes:
                peers.append(int(fields[2].rsplit(":", 1)[1], 16))
    return peers


def prod_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The suite's database and secret, budgets and caps out of the way of a burst."""
    return {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "PETSTORE_VAR_DIR": str(settings.var_dir),
        "PETSTORE_JWT_SECRET": settings.jwt_secret,
        "PETSTORE_RATE_LIMIT": "0",
        "PETSTORE_ORDER_RATE_LIMIT": "0",
        "PETSTORE_ORDER_HOLD_LIMIT": "0",
        "PETSTORE_LOG_LEVEL": "WARNING",
        "PETSTORE_WEBHOOK_WORKER": "0",
        **extra,
    }


def test_sigkill_of_a_worker_loses_no_acknowledged_order(
    api: Api, settings: Settings, tmp_path: Path
) -> None:
    admin = api.admin_token()
    pets = [api.create_pet(admin, name=f"Burst{i}")["id"] for i in range(PETS)]
    spare = api.create_pet(admin, name="Unfinished")["id"]  # ordered by a request cut short
    buyers = [api.user_token() for _ in range(BUYERS)]
    acknowledged: dict[str, dict[str, Any]] = {}  # order id -> the 201 body
    failures: list[str] = []
    wrong: list[dict[str, Any]] = []
    lock = threading.Lock()
    enough = threading.Event()
    todo = list(pets)

    with gunicorn_process(prod_env(settings), tmp_path / "gunicorn.log", workers=2) as (
        origin,
        master,
    ):
        base = origin + "/v1"

        def client(number: int) -> None:
            user, token = buyers[number % BUYERS]
            headers = {"X-Tenant-ID": api.tenant or "", "Authorization": f"Bearer {token}"}
            while True:
                with lock:
                    if not todo:
                        return
                    pet_id = todo.pop()
                try:  # a new connection each time: either worker may take it
                    r = httpx.post(f"{base}/orders", json={"petId": pet_id}, headers=headers,
                                   timeout=60)  # fmt: skip
                except httpx.HTTPError as exc:  # the killed worker's connections
                    with lock:
                        failures.append(f"{pet_id}: {exc!r}")
                    continue
                with lock:
                    if 200 <= r.status_code < 300:
                        body = r.json()
                        if (body["petId"], body["userId"]) != (pet_id, user["id"]):
                            wrong.append(body)
                        acknowledged[body["id"]] = body
                        if len(acknowledged) >= KILL_AFTER:
                            enough.set()
                    else:
                        failures.append(f"{pet_id}: {r.status_code} {r.text[:200]}")

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        # An order whose body is still arriving: certainly in flight on the worker holding it.
        port = int(origin.rsplit(":", 1)[1])
        partial = json.dumps({"petId": spare}).encode()
        cut = socket.create_connection(("127.0.0.1", port), timeout=60)
        cut.sendall(
            b"POST /v1/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"X-Tenant-ID: {api.tenant}\r\nAuthorization: Bearer {buyers[0][1]}\r\n".encode()
            + f"Content-Length: {len(partial)}\r\n\r\n".encode()
            + partial[:5]
        )
        assert enough.wait(timeout=300), failures[:5]
        client_port = cut.getsockname()[1]
        deadline = time.monotonic() + 30
        while True:  # the worker holding it, once it also serves orders of the burst
            serving = {pid: connections(pid, port) for pid in child_pids(master.pid)}
            victim = next((pid for pid, peers in serving.items() if client_port in peers), None)
            if (victim is not None and len(serving[victim]) >= 3) or time.monotonic() > deadline:
                break
            time.sleep(0.005)
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        answer = b""
        with contextlib.suppress(ConnectionError):  # too late: its worker is gone
            cut.sendall(partial[5:])
            answer = cut.recv(65536)
        cut.close()
        assert answer == b""  # no answer ever comes
        for t in threads:
            t.join(timeout=300)
        assert not any(t.is_alive() for t in threads)
        assert victim not in child_pids(master.pid)
        assert master.poll() is None  # the master replaced the worker and goes on

    assert not wrong
    assert len(acknowledged) > KILL_AFTER  # orders went on after the kill
    assert len(acknowledged) + len(failures) == PETS

    def read(session: Session) -> tuple[list[Order], list[Pet]]:
        return list(session.scalars(select(Order))), list(session.scalars(select(Pet)))

    async def fetch(db: Database) -> tuple[list[Order], list[Pet]]:
        return await db.run(api.tenant or "", read)

    orders, stored_pets = run_db(settings, fetch)
    by_id = {str(o.id): o for o in orders}
    for order_id, body in acknowledged.items():  # every acknowledged order is committed, whole
        order = by_id.get(order_id)
        assert order is not None, f"acknowledged order {order_id} is not in the database"
        assert str(order.pet_id) == body["petId"]
        assert str(order.user_id) == body["userId"]
        assert order.status == "PLACED"
    # Nothing half-written: an order always holds its pet, a held pet always has its order
    # (orders whose 201 was lost with the worker may exist, whole).
    held = {str(o.pet_id) for o in orders}
    assert len(held) == len(orders)  # one order per pet
    for pet in stored_pets:
        if str(pet.id) in held:
            assert (pet.status, pet.version) == ("PENDING", 2), pet.id
        else:
            assert (pet.status, pet.version) == ("AVAILABLE", 1), pet.id
    assert {str(p.id) for p in stored_pets} == {*pets, spare}
    assert spare not in held  # the order cut short left nothing behind
