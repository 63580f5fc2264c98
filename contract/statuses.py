"""The statuses a schema-valid request may legitimately get, per operation, for Schemathesis'
``positive_data_acceptance`` check (ST202 "valid data should have been accepted").

Derived from spec/openapi.yaml, so a status documented on an operation later is picked up by
the rules below without editing this file:

- every documented 2xx and 3xx;
- the documented statuses that depend on the server's state, not on the request's shape
  (``STATE``): 404 (the id names nothing yet), 409 (the pet, order or name is taken or in the
  wrong state), 412 (If-Match naming another version), 429 (a budget spent), 503 (busy);
- 401 where the request itself carries a credential that generated data cannot know: the
  OAuth2 token endpoint (generated usernames name nobody) and ``CREDENTIAL_HEADERS``;
- 422 where the operation takes an ``Idempotency-Key`` (a key reused with another request);
- 403 only where ``X-Tenant-ID`` may name another tenant than the token's
  (``TENANT_MISMATCH_IS_POSITIVE``; contract/run.py pins that header to the tokens' tenant
  instead, so a 403 on valid data is a finding).

Everything else a valid request can get for a reason no JSON Schema can state is listed in
``OVERRIDES``, each with its reason, and only if the spec documents it (tests/spec/
test_contract.py checks every status here against its operation). To let valid data get a new
documented status, add a rule above if it follows from the server's state, else a line there.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from web.openapi_walk import iter_operations, resolve

STATE = frozenset({"404", "409", "412", "429", "503"})
CREDENTIAL_HEADERS = frozenset({"x-order-token"})  # the guest's order token: 401 when wrong
IDEMPOTENCY_HEADER = "idempotency-key"
TENANT_HEADER = "x-tenant-id"
TENANT_MISMATCH_IS_POSITIVE = False

CURSOR = (
    "a generated cursor is not one this server issued (opaque: checked on arrival), or it is"
    " given beside page (OpenAPI 3.0.3 cannot say two query parameters exclude each other)"
)

OVERRIDES: Mapping[str, Mapping[str, str]] = {
    "listPets": {
        "400": CURSOR,
        "422": "minAge greater than maxAge, minPrice than maxPrice",
    },
    "searchPets": {
        "400": CURSOR,
        "422": "minAge greater than maxAge, minPrice than maxPrice, or goodWithDogs/goodWithCats"
        " disagreeing with goodWithPets (all three filter on the pet's goodWithPets)",
    },
    "uploadPetImage": {
        "400": "an empty file",
        "413": "a file over 5 MiB",
        "415": "bytes that are not the JPEG, PNG or WebP the part's Content-Type declares",
        "422": "an image that does not decode, or breaks the pixel/frame/metadata limits",
    },
    "payOrder": {
        "402": "test card or account numbers ending 0002 or 9995 are declined",
        "422": "a card number failing the Luhn check, an expired card, a bad IBAN checksum",
        "502": "numbers ending 0119 simulate a processor failure",
    },
    "createWebhook": {"422": "the URL's host is refused by the SSRF policy"},
    "callbackExample": {"422": "the callback URL's host is refused by the SSRF policy"},
    "createChatCompletion": {"413": "a conversation over 16,000 characters in all"},
    "changePassword": {"422": "a generated currentPassword is not the account's password"},
    # The login endpoint: no longer an OAuth flow's tokenUrl (the flows use /oauth/token).
    "createAuthToken": {"401": "generated usernames and passwords name no account"},
}

# The same, for the Admin API (spec/admin.yaml).
ADMIN_OVERRIDES: Mapping[str, Mapping[str, str]] = {
    "getDashboardStats": {"422": "from not before to, a period over 5 years, or out of range"},
    "listAllOrders": {"422": "from not before to, or a time out of range"},
    "listAuditLogs": {"422": "from not before to, or a time out of range"},
    "updateUserStatus": {
        "422": "a reason of characters JSON Schema's \\S accepts but Python counts as blank"
    },
    "forceCancelOrder": {
        "422": "a reason of characters JSON Schema's \\S accepts but Python counts as blank"
    },
}


def operations(spec: Mapping[str, Any]) -> Iterator[tuple[str, str, Mapping[str, Any], list[Any]]]:
    """(path, method, operation, parameters incl. the path item's) for every operation."""
    for path, method, op in iter_operations(spec):
        shared = [resolve(spec, p) for p in spec["paths"][path].get("parameters", [])]
        own = [resolve(spec, p) for p in op.get("parameters", [])]
        yield path, method, op, shared + own


def _token_paths(spec: Mapping[str, Any]) -> set[str]:
    """Operation paths (without the server's base path) that mint credentials."""
    bases = [
        s["url"].rstrip("/") for s in spec.get("servers", []) if s.get("url", "").startswith("/")
    ]
    found = set()
    for scheme in spec.get("components", {}).get("securitySchemes", {}).values():
        for flow in scheme.get("flows", {}).values():
            url = flow.get("tokenUrl", "")
            found.add(url)
            found.update(url[len(base) :] for base in bases if url.startswith(base + "/"))
    return found


def positive_statuses(
    spec: Mapping[str, Any], overrides: Mapping[str, Mapping[str, str]] = OVERRIDES
) -> dict[str, list[str]]:
    """operationId → the statuses schema-valid data may get, sorted (``overrides``: OVERRIDES
    for spec/openapi.yaml, ADMIN_OVERRIDES for spec/admin.yaml)."""
    token_paths = _token_paths(spec)
    table: dict[str, list[str]] = {}
    for path, _method, op, parameters in operations(spec):
        documented = set(op.get("responses", {}))
        headers = {p["name"].lower() for p in parameters if p.get("in") == "header"}
        allowed = {s for s in documented if s[0] in "23"} | (documented & STATE)
        if path in token_paths or headers & CREDENTIAL_HEADERS:
            allowed |= documented & {"401"}
        if IDEMPOTENCY_HEADER in headers:
            allowed |= documented & {"422"}
        if TENANT_MISMATCH_IS_POSITIVE and TENANT_HEADER in headers:
            allowed |= documented & {"403"}
        allowed |= set(overrides.get(op["operationId"], {}))
        table[op["operationId"]] = sorted(allowed)
    return table


def schemathesis_operations(
    table: Mapping[str, list[str]], parameters: Mapping[str, Mapping[str, str]] | None = None
) -> str:
    """``[[operations]]`` blocks for a schemathesis.toml, one per operation: its statuses, and
    the parameter values pinned for it (``parameters``: operationId → {"path.id": value})."""
    blocks = []
    for operation_id, statuses in sorted(table.items()):
        quoted = ", ".join(f'"{s}"' for s in statuses)
        block = f'[[operations]]\ninclude-operation-id = "{operation_id}"\n'
        pinned = (parameters or {}).get(operation_id)
        if pinned:
            block += "\n[operations.parameters]\n" + "".join(
                f'"{name}" = "{value}"\n' for name, value in pinned.items()
            )
        block += f"\n[operations.checks.positive_data_acceptance]\nexpected-statuses = [{quoted}]\n"
        blocks.append(block)
    return "\n".join(blocks)
