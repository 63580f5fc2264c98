"""The response recorder (tests/spec/recorder.py) sees what the app answers, and its check reports
what the spec does not declare, so the end-of-session comparison can fail."""

from __future__ import annotations

import uuid

from starlette.testclient import TestClient

from app import load_spec
from tests.conftest import RECORDER
from tests.spec.recorder import IGNORED_HEADERS, Observation, check, check_modules

SPEC = load_spec()
COMMON = frozenset(
    {
        "content-type",
        "content-length",
        "x-request-id",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "ratelimit-policy",
    }
)


def test_the_recorder_sees_every_response_of_the_app(client: TestClient) -> None:
    path = f"/v1/pets/{uuid.uuid4()}"
    r = client.get(path)
    assert r.status_code == 404
    seen = {o for o in RECORDER.seen if o.path == path}
    assert seen == {Observation("GET", path, 404, frozenset(r.headers.keys()))}


def test_declared_statuses_and_headers_pass() -> None:
    observations = [
        Observation("GET", "/v1/pets", 200, COMMON),
        Observation("GET", "/v1/pets/019b4132-70aa-764f-b315-e2803d882a24", 200, COMMON | {"etag"}),
        Observation("POST", "/v1/pets/search", 200, COMMON),  # not taken for /pets/{id}
        Observation("QUERY", "/v1/pets/search", 200, COMMON),
        Observation("HEAD", "/v1/pets", 200, COMMON),
        Observation("PATCH", "/v1/pets", 405, COMMON | {"allow"}),
        # Not operations of the spec: outside the check.
        Observation("GET", "/healthz", 200, frozenset({"x-anything"})),
        Observation("GET", "/v1/openapi.json", 200, frozenset({"x-anything"})),
        Observation("GET", "/v1/nowhere", 404, frozenset({"x-anything"})),
    ]
    assert check(SPEC, observations) == []


def test_an_undeclared_status_or_header_is_reported() -> None:
    observations = [
        Observation("GET", "/v1/pets", 200, COMMON | {"x-secret-debug"}),
        Observation("GET", "/v1/pets", 418, COMMON),
        Observation("DELETE", "/v1/pets", 405, COMMON | {"x-undocumented"}),
    ]
    mismatches = check(SPEC, observations)
    assert "listPets (GET /pets): header x-secret-debug on 200 is not declared (e.g. /v1/pets)" in (
        mismatches
    )
    assert "listPets (GET /pets): status 418 is not declared (e.g. /v1/pets)" in mismatches
    # A method the path lacks: every operation of the path must document the answer.
    for operation_id in ("listPets", "createPet"):
        assert (
            f"DELETE /pets (no such operation: every operation of the path): {operation_id}: "
            "header x-undocumented on 405 is not declared (e.g. /v1/pets)"
        ) in mismatches
    assert len(mismatches) == 4, mismatches


def test_only_standard_framing_headers_are_ignored() -> None:
    assert set(IGNORED_HEADERS) == {
        "content-type",
        "content-length",
        "transfer-encoding",
        "connection",
        "date",
        "server",
    }
    assert all(IGNORED_HEADERS.values())


def test_the_admin_modules_answers_are_checked_against_its_own_spec() -> None:
    observations = [
        Observation("GET", "/v1/admin/dashboard", 200, COMMON),
        Observation("GET", "/v1/admin/dashboard", 418, COMMON),
        Observation("DELETE", "/v1/admin/users", 405, COMMON | {"allow"}),
    ]
    # the Store API's spec has no such paths: outside its check
    assert check(SPEC, observations) == []
    assert check_modules(observations) == [
        "getDashboardStats (GET /dashboard): status 418 is not declared (e.g. /v1/admin/dashboard)"
    ]
