"""One walk over an OpenAPI document's operations, shared by everything that reads the spec at
runtime or in tests (the request guard's routes, the metrics labels, the contract run's status
table, the spec recorder), so that they agree on what an operation is.

- ``HTTP_METHODS``: the path-item keys that are operations (OpenAPI 3.0.3 §4.7.9).
- ``QUERY_AS_POST``: paths whose ``QUERY`` requests are served as their ``post`` operation
  (OpenAPI 3.0.3 cannot declare QUERY; the request guard routes it, web/middleware.py).
- ``iter_operations``: (path, method, operation) in the document's order.
- ``resolve``: follow local ``$ref`` pointers to the node they name."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
QUERY_AS_POST = frozenset({"/pets/search"})


def resolve(spec: Mapping[str, Any], node: Any) -> Any:
    """The node a local ``$ref`` (``#/components/...``) points to, followed to the end."""
    while isinstance(node, Mapping) and "$ref" in node:
        target: Any = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def iter_operations(spec: Mapping[str, Any]) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """(path, lower-case method, operation) of every operation, in the document's order."""
    for path, item in spec.get("paths", {}).items():
        for method in HTTP_METHODS:
            op = item.get(method)
            if isinstance(op, Mapping):
                yield path, method, op
