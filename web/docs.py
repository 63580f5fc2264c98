"""The contracts as written, for tools and people: for each (spec file, prefix) served,
``{prefix}/openapi.json`` and ``{prefix}/openapi.yaml`` serve the file itself (every ``$ref`` and
component kept, so generators build named models), and ``{prefix}/redoc`` renders it with ReDoc
beside Connexion's Swagger UI (``{prefix}/ui/``, which reads the same JSON). The Store API is
``spec/openapi.yaml`` under ``/v1``, the Admin API ``spec/admin.yaml`` under ``/v1/admin``.

Read once at startup; ``GET`` and ``HEAD`` only (other methods fall through to the API, which
answers them as it answers any unknown route)."""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path

import orjson
import yaml
from starlette.types import ASGIApp, Receive, Scope, Send

REDOC_VERSION = "2.5.0"
REDOC_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} (ReDoc)</title>
</head>
<body>
  <redoc spec-url="{spec_url}"></redoc>
  <script src="https://cdn.jsdelivr.net/npm/redoc@{version}/bundles/redoc.standalone.js"></script>
</body>
</html>
"""


def _documents(spec_path: Path, prefix: str) -> dict[str, tuple[bytes, bytes]]:
    raw = spec_path.read_bytes()
    document = yaml.safe_load(raw)
    title = str(document.get("info", {}).get("title", "API"))
    page = REDOC_PAGE.format(
        title=html.escape(title),
        spec_url=html.escape(f"{prefix}/openapi.json"),
        version=REDOC_VERSION,
    )
    return {
        f"{prefix}/openapi.json": (
            orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS),
            b"application/json",
        ),
        f"{prefix}/openapi.yaml": (raw, b"application/yaml; charset=utf-8"),
        f"{prefix}/redoc": (page.encode(), b"text/html; charset=utf-8"),
    }


class DocsMiddleware:
    def __init__(self, app: ASGIApp, specs: Iterable[tuple[Path, str]]) -> None:
        """``specs``: (spec file, the prefix its documents are served under)."""
        self.app = app
        self.routes: dict[str, tuple[bytes, bytes]] = {}
        for spec_path, prefix in specs:
            self.routes.update(_documents(spec_path, prefix))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self.routes.get(scope.get("path", "")) if scope["type"] == "http" else None
        if found is None or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        body, media_type = found
        headers = [
            (b"content-type", media_type),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-cache"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )
