"""Production mode (``make serve-prod``: gunicorn + uvicorn workers, ./gunicorn.conf.py) over
real HTTP: a graceful SIGTERM lets an in-flight request and an open chat stream finish while new
connections are refused, and the master exits 0."""

from __future__ import annotations

import json
import signal
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import PET
from tests.live.conftest import Live, server_env
from tests.servers import gunicorn_process

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
