"""The specs are the contract: every operation of the Store API (spec/openapi.yaml) and of the
Admin API (spec/admin.yaml) resolves to a handler and back, documents the statuses the server can
send, carries its module's Apidog folder, and every example validates."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types
from typing import Any

import jsonschema_rs
import pytest

import handlers
from app import ADMIN_SPEC_PATH, load_spec, resolve_handler, routing_order
from web.validators import to_jsonschema

SPEC = load_spec()
ADMIN_SPEC = load_spec(ADMIN_SPEC_PATH)
MODULES = {"Store API": SPEC, "Admin API": ADMIN_SPEC}
"""Each module (its Apidog name) and its spec; Admin API paths are shown with /admin."""
PREFIXES = {"Store API": "", "Admin API": "/admin"}
VERBS = {"get", "put", "post", "delete", "patch"}
OPERATIONS = [
    (PREFIXES[module] + path, method, {**op, "x-module": module})
    for module, spec in MODULES.items()
    for path, item in spec["paths"].items()
    for method, op in item.items()
    if method in VERBS
]
IDS = [f"{m.upper()} {p}" for p, m, _ in OPERATIONS]


def _target(op: dict[str, Any]) -> str:
    return f"{op['x-openapi-router-controller']}.{op['operationId']}"


def test_every_operation_id_resolves_to_a_coroutine_handler() -> None:
    for _, _, op in OPERATIONS:
        fn = resolve_handler(_target(op))
        assert inspect.iscoroutinefunction(fn), _target(op)


def test_no_handler_lacks_an_operation() -> None:
    routed = {resolve_handler(_target(op)) for _, _, op in OPERATIONS}
    for info in pkgutil.iter_modules(handlers.__path__):
        if info.name.startswith("_") or info.name == "problems":
            continue
        module = importlib.import_module(f"handlers.{info.name}")
        for name, fn in list(vars(module).items()):
            if name.startswith("_") or not isinstance(fn, types.FunctionType):
                continue
            if not inspect.iscoroutinefunction(fn):
                continue
            if fn.__module__ == module.__name__:
                assert fn in routed, f"handlers.{info.name}.{name} has no operation in the spec"


@pytest.mark.parametrize(("path", "method", "op"), OPERATIONS, ids=IDS)
def test_operation_documents_the_common_statuses(
    path: str, method: str, op: dict[str, Any]
) -> None:
    spec = MODULES[op["x-module"]]
    codes = set(op["responses"])
    # RequestGuard answers 405 (another method on the path) and 413 (a body over the limit, even
    # where none is expected) on every path; OpenAPI documents them per operation.
    assert {"400", "405", "406", "413", "429", "500"} <= codes
    if op.get("security", spec.get("security")):
        assert {"401", "403"} <= codes
    if "requestBody" in op:
        assert {"413", "415"} <= codes
    assert op["x-apidog-folder"].startswith(op["x-module"] + "/")
    assert op["tags"]
    assert op["operationId"][0].islower()
    assert "." not in op["operationId"]


def _resolve(node: Any, spec: dict[str, Any] = SPEC) -> Any:
    if isinstance(node, dict):
        if "$ref" in node and len(node) == 1:
            target: Any = spec
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            return _resolve(target, spec)
        return {k: _resolve(v, spec) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, spec) for v in node]
    return node


def test_every_admin_operation_requires_the_admin_scope() -> None:
    """Admins only, in the contract (the services check it too: tests/api/test_admin.py)."""
    admin_ops = [op for _, _, op in OPERATIONS if op["x-module"] == "Admin API"]
    assert len(admin_ops) == 8
    for op in admin_ops:
        assert op["security"] == [{"oauth2": ["admin"]}, {"bearerAuth": []}], op["operationId"]


@pytest.mark.parametrize(("path", "method", "op"), OPERATIONS, ids=IDS)
def test_every_secured_operation_accepts_either_scheme_oauth2_first(
    path: str, method: str, op: dict[str, Any]
) -> None:
    """oauth2 with the operation's scopes, then bearerAuth (which applies the same scopes:
    auth/security.py), then optionally ``{}`` (a token is optional). oauth2 comes first so
    that Connexion names its scopes in a refusal."""
    requirements = op.get("security", MODULES[op["x-module"]].get("security")) or []
    if not requirements:
        return
    assert list(requirements[0]) == ["oauth2"], op["operationId"]
    assert requirements[1] == {"bearerAuth": []}, op["operationId"]
    assert requirements[2:] in ([], [{}]), op["operationId"]


def _media_examples() -> list[tuple[str, Any, Any]]:
    found = []
    for path, method, op in OPERATIONS:
        bodies = [("request", op.get("requestBody"))] + [
            (f"response {code}", resp) for code, resp in op["responses"].items()
        ]
        for where, body in bodies:
            body = _resolve(body, MODULES[op["x-module"]]) if body else None
            for media in (body or {}).get("content", {}).values():
                examples = (
                    [media["example"]]
                    if "example" in media
                    else [e["value"] for e in media.get("examples", {}).values()]
                )
                for example in examples:
                    found.append((f"{method.upper()} {path} {where}", media["schema"], example))
    return found


@pytest.mark.parametrize(
    ("where", "schema", "example"), _media_examples(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_examples_validate_against_their_schemas(where: str, schema: Any, example: Any) -> None:
    mode = "request" if "request" in where else "response"
    validator = jsonschema_rs.Draft4Validator(to_jsonschema(schema, mode), validate_formats=True)
    errors = [e.message for e in validator.iter_errors(example)]
    assert not errors, f"{where}: {errors}"


def test_user_registration_is_the_user_plus_its_token() -> None:
    """UserRegistration repeats User's fields (User forbids additional properties, so allOf
    cannot extend it): the two must not drift apart."""
    schemas = SPEC["components"]["schemas"]
    user, registration = schemas["User"], schemas["UserRegistration"]
    assert registration["properties"]["token"] == {"$ref": "#/components/schemas/Token"}
    assert {k: v for k, v in registration["properties"].items() if k != "token"} == user[
        "properties"
    ]
    assert registration["required"] == [*user["required"], "token"]


def test_public_profile_is_a_subset_of_the_user_without_private_fields() -> None:
    schemas = SPEC["components"]["schemas"]
    user, profile = schemas["User"], schemas["UserPublicProfile"]
    assert set(profile["properties"]) <= set(user["properties"])
    assert not {"email", "phone", "preferences", "role", "tenantId"} & set(profile["properties"])
    for name, definition in profile["properties"].items():
        assert definition == user["properties"][name], name


def _shadows(first: str, later: str) -> bool:
    """Whether a route for ``first`` (its ``{...}`` matching any one segment) takes every URL of
    ``later`` before it is tried."""
    a, b = first.strip("/").split("/"), later.strip("/").split("/")
    return len(a) == len(b) and all(x == y or x.startswith("{") for x, y in zip(a, b, strict=True))


def test_the_router_tries_literal_paths_before_templates() -> None:
    """The spec keeps the seed's navigation order, in which /pets/{id} comes before
    /pets/search; the router gets an order where no path is hidden behind an earlier one."""
    for spec in MODULES.values():
        ordered = list(routing_order(spec)["paths"])
        assert sorted(ordered) == sorted(spec["paths"])
        for index, first in enumerate(ordered):
            for later in ordered[index + 1 :]:
                assert not _shadows(first, later), f"{first} hides {later}"


BINARY = {"type": "string", "format": "binary"}
"""Raw bytes (the image responses): an example would be bytes, which YAML cannot show; Swagger UI
and ReDoc offer the body as a download. Multipart bodies with a binary part still carry one."""


def _bodies_without_examples() -> list[str]:
    """Every request body and every 2xx response, per media type, lacking an example."""
    missing = []
    for path, method, op in OPERATIONS:
        bodies = [("request", op.get("requestBody"))] + [
            (f"response {code}", resp) for code, resp in op["responses"].items() if code[0] == "2"
        ]
        for where, body in bodies:
            resolved = _resolve(body, MODULES[op["x-module"]]) if body else {}
            for name, media in (resolved.get("content") or {}).items():
                if media.get("schema") == BINARY:
                    continue
                if "example" not in media and not media.get("examples"):
                    missing.append(f"{method.upper()} {path} {where} {name}")
    return missing


def test_every_request_body_and_success_response_has_an_example() -> None:
    # ...which test_examples_validate_against_their_schemas then validates.
    assert _bodies_without_examples() == []


EVERY_RESPONSE_HEADERS = {
    "X-Request-ID",  # RequestContextMiddleware
    "RateLimit-Limit",  # RateLimitMiddleware, on every /v1 response while limiting is on
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "RateLimit-Policy",
}


@pytest.mark.parametrize(("path", "method", "op"), OPERATIONS, ids=IDS)
def test_every_response_declares_the_headers_every_response_carries(
    path: str, method: str, op: dict[str, Any]
) -> None:
    """Also for responses no test provokes (the recorder only sees those some test does)."""
    spec = MODULES[op["x-module"]]
    for code, response in op["responses"].items():
        declared = set(_resolve(response, spec).get("headers", {}))
        assert declared >= EVERY_RESPONSE_HEADERS, f"{code}: {EVERY_RESPONSE_HEADERS - declared}"
    allow = _resolve(op["responses"]["405"], spec).get("headers", {})
    assert "Allow" in allow
