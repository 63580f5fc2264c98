"""Records every response the real app sends during a pytest run, and compares it with the spec.

While tests run, ``Recorder.install()`` wraps ``connexion.AsyncApp.__call__`` (the ASGI entry that
every in-process test client calls, whichever fixture or test built the app) and notes, for each
HTTP response, the request's method and path, the status and the response's header names. At
the end of the session (``pytest_sessionfinish`` in tests/conftest.py) ``check()`` compares them
with spec/openapi.yaml (paths under /v1) and spec/admin.yaml (the Admin API, under /v1/admin)
and the run fails, listing every mismatch, if

- a status was answered that the operation does not declare (nor a ``default``), or
- a response carried a header that the declared response does not list under ``headers``
  (except ``IGNORED_HEADERS``, each with its reason).

It is a subset check: only what was observed is asserted, so running one test file checks
what that file's requests saw. Outside the check: requests whose path matches no path of the
spec (``/healthz``, ``/readyz``, ``/v1/openapi.json``, ``/v1/ui/``, ``/v1/redoc``, GraphQL,
unknown paths' 404), and responses of live servers run in other processes (tests/live,
``live_server``), which this process does not see.

A request for a method a path does not have (the 405 with ``Allow`` from web/middleware.py)
belongs to no operation: OpenAPI can only document it per operation, so its status and headers
must be declared on every operation of that path. ``HEAD`` is checked against the path's
``get``, ``QUERY`` on /pets/search against its ``post`` (the middleware routes them so).

``PETSTORE_SPEC_RECORD=<file>`` also writes the observations as JSON, for ``python -m
tests.spec.recorder <file>`` to re-check against an edited spec without running the suite again.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from settings import ADMIN_PREFIX, API_PREFIX
from web.openapi_walk import HTTP_METHODS, QUERY_AS_POST, resolve

IGNORED_HEADERS: Mapping[str, str] = {
    "content-type": "described by the response's content map; OAS 3.0 says a Content-Type "
    "entry in headers SHALL be ignored",
    "content-length": "message framing (RFC 9110 8.6), on every response with a body",
    "transfer-encoding": "hop-by-hop message framing (RFC 9112 6.1), set by the HTTP server",
    "connection": "hop-by-hop (RFC 9110 7.6.1), set by the HTTP server",
    "date": "added by the HTTP server to every response (RFC 9110 6.6.1)",
    "server": "added by the HTTP server (uvicorn), not by the application",
}


@dataclass(frozen=True)
class Observation:
    method: str
    path: str  # the request's path, /v1 included
    status: int
    headers: frozenset[str]  # lower-case names

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "headers": sorted(self.headers),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Observation:
        return cls(data["method"], data["path"], data["status"], frozenset(data["headers"]))


class Recorder:
    def __init__(self) -> None:
        self.seen: set[Observation] = set()
        self._original: Any = None

    def install(self) -> None:
        from connexion import AsyncApp

        original = AsyncApp.__call__
        seen = self.seen

        async def recording_call(app: Any, scope: Any, receive: Any, send: Any) -> None:
            if scope.get("type") != "http":
                await original(app, scope, receive, send)
                return

            async def recording_send(message: Any) -> None:
                if message["type"] == "http.response.start":
                    names = frozenset(
                        k.decode("latin-1").lower() for k, _ in message.get("headers", [])
                    )
                    seen.add(Observation(scope["method"], scope["path"], message["status"], names))
                await send(message)

            await original(app, scope, receive, recording_send)

        self._original = original
        AsyncApp.__call__ = recording_call  # type: ignore[method-assign]

    def uninstall(self) -> None:
        if self._original is not None:
            from connexion import AsyncApp

            AsyncApp.__call__ = self._original  # type: ignore[method-assign]
            self._original = None

    def dump(self, path: Path) -> None:
        rows = sorted((o.as_json() for o in self.seen), key=lambda r: json.dumps(r))
        path.write_text(json.dumps(rows, indent=1))


class SpecIndex:
    """The spec's paths as regular expressions, literal segments before templated ones (so
    /pets/search is not taken for /pets/{id})."""

    def __init__(self, spec: Mapping[str, Any], prefix: str = API_PREFIX) -> None:
        self.spec = spec
        templates = sorted(spec["paths"], key=lambda t: (t.count("{"), t))
        self.paths = [(self._compile(prefix + t), t) for t in templates]

    @staticmethod
    def _compile(template: str) -> re.Pattern[str]:
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        return re.compile(f"^{pattern}$")

    def template(self, path: str) -> str | None:
        return next((t for regex, t in self.paths if regex.match(path)), None)

    def operations(self, template: str, method: str) -> tuple[str, list[tuple[str, Any]]]:
        """(what to call it, [(operationId, operation)]) a request is checked against: its
        operation, or every operation of the path when it has none for the method."""
        item = self.spec["paths"][template]
        verb = method.lower()
        if verb == "head" and "head" not in item:
            verb = "get"
        if verb == "query" and template in QUERY_AS_POST:
            verb = "post"
        if verb in item:
            op = item[verb]
            return f"{op['operationId']} ({verb.upper()} {template})", [(op["operationId"], op)]
        ops = [(item[v]["operationId"], item[v]) for v in HTTP_METHODS if v in item]
        return f"{method} {template} (no such operation: every operation of the path):", ops

    def response(self, op: Mapping[str, Any], status: int) -> Mapping[str, Any] | None:
        responses = op.get("responses", {})
        node = responses.get(str(status), responses.get(f"{str(status)[0]}XX"))
        if node is None:
            node = responses.get("default")
        return resolve(self.spec, node) if node is not None else None


def check(
    spec: Mapping[str, Any], observations: Iterable[Observation], prefix: str = API_PREFIX
) -> list[str]:
    """Every mismatch between what was answered and what the spec (served under ``prefix``)
    declares, one line each."""
    index = SpecIndex(spec, prefix)
    problems: dict[str, set[str]] = {}
    for obs in observations:
        template = index.template(obs.path)
        if template is None:
            continue  # not an operation of the spec (probes, docs, GraphQL, unknown paths)
        label, ops = index.operations(template, obs.method)
        for operation_id, op in ops:
            where = f"{label} {operation_id}" if label.endswith(":") else label
            response = index.response(op, obs.status)
            if response is None:
                problems.setdefault(f"{where}: status {obs.status} is not declared", set()).add(
                    obs.path
                )
                continue
            declared = {name.lower() for name in response.get("headers", {})}
            extra = obs.headers - declared - set(IGNORED_HEADERS)
            for name in sorted(extra):
                problems.setdefault(
                    f"{where}: header {name} on {obs.status} is not declared", set()
                ).add(obs.path)
    return [f"{problem} (e.g. {sorted(paths)[0]})" for problem, paths in sorted(problems.items())]


def check_modules(observations: Iterable[Observation]) -> list[str]:
    """``check`` against every module the app serves: the Store API and the Admin API."""
    from app import ADMIN_SPEC_PATH, load_spec

    seen = list(observations)
    return check(load_spec(), seen) + check(load_spec(ADMIN_SPEC_PATH), seen, ADMIN_PREFIX)


def main(argv: list[str]) -> int:
    observations = [Observation.from_json(r) for r in json.loads(Path(argv[0]).read_text())]
    mismatches = check_modules(observations)
    print("\n".join(mismatches) or "no mismatches")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
