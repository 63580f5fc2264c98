"""The benchmark's wrk scripts send what they say (bench/load.py): the method, the headers and the
body reach the server. A Lua syntax error in a script makes wrk fall back to plain GETs without
failing, which once turned every POST and If-None-Match figure of `make bench` into GETs."""

from __future__ import annotations

import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bench import load

seen: list[tuple[str, dict[str, str], bytes]] = []


class Recorder(BaseHTTPRequestHandler):
    def _record(self) -> None:
        size = int(self.headers.get("Content-Length") or 0)
        seen.append((self.command, dict(self.headers), self.rfile.read(size)))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _record

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (make bench adds it)")
def test_a_post_with_headers_and_a_body_is_sent_as_such(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1/pets"
        request = load.Request(
            "POST",
            url,
            body='{"name": "]]Rex[[", "x": "]=]"}',
            headers={"Authorization": "Bearer a.b.c", "If-None-Match": 'W/"x"'},
        )
        script = load.write_wrk_script(request, tmp_path / "post.lua")
        result = load.run_wrk(str(shutil.which("wrk")), request, 1, script)
    finally:
        server.shutdown()
    assert result.requests > 0
    method, headers, body = seen[-1]
    assert method == "POST"
    assert headers["Authorization"] == "Bearer a.b.c"
    assert headers["If-None-Match"] == 'W/"x"'
    assert headers["Content-Type"] == "application/json"
    assert body == b'{"name": "]]Rex[[", "x": "]=]"}'
