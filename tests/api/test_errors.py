"""Errors and limits that apply to every route: 404/405/406/413/415, UTF-8, malformed JSON, 500."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import yaml

from handlers import pets as pets_handlers
from services.catalogue import pets as pet_service
from settings import ROOT
from tests.conftest import PET, Api, problem


def _other_paths() -> list[tuple[str, str]]:
    """Every path of the spec but /pets/search, its parameters filled, and its methods."""
    spec = yaml.safe_load((ROOT / "spec" / "openapi.yaml").read_text())
    verbs = {"get", "put", "post", "delete", "patch"}
    sample = "0b8f3c1f6a8a2c9d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5.jpg"
    found = []
    for path, item in spec["paths"].items():
        if path != "/pets/search":
            url = re.sub(r"\{imageName\}", sample, path)
            url = re.sub(r"\{[^}]+\}", "019b4132-70aa-764f-b315-e2803d882a24", url)
            found.append((url, ", ".join(sorted(m.upper() for m in item if m in verbs))))
    return found


_OTHER_PATHS = _other_paths()


class TestMethodNotAllowed:
    @pytest.mark.parametrize(
        ("method", "path", "allow"),
        [
            ("PATCH", "/pets", "GET, POST"),
            ("DELETE", "/pets", "GET, POST"),
            ("PATCH", "/pets/019b4132-70aa-764f-b315-e2803d882a24", "DELETE, GET, PUT"),
            ("GET", "/pets/search", "POST"),
            ("GET", "/auth/tokens", "POST"),
            ("POST", "/users/019b4138-e0af-70b9-8f0c-6ea97d495dfa", "DELETE, GET, PUT"),
        ],
    )
    def test_405_allow_lists_every_method_of_the_path(
        self, api: Api, method: str, path: str, allow: str
    ) -> None:
        r = api.request(method, path)
        assert r.status_code == 405
        assert r.headers["allow"] == allow
        assert r.json() == problem(
            405,
            "method-not-allowed",
            "Method Not Allowed",
            f"Method {method} is not allowed on /v1{path}.",
            f"/v1{path}",
        )

    @pytest.mark.parametrize(("path", "allow"), _OTHER_PATHS)
    def test_query_method_only_on_search(self, api: Api, path: str, allow: str) -> None:
        """QUERY is served on /pets/search only (test_pets.py searches with it); the contract
        run does not probe QUERY (contract/schemathesis.toml), so every other path is here."""
        r = api.request("QUERY", path, json={})
        assert r.status_code == 405
        assert r.headers["allow"] == allow


class TestNotAcceptable:
    def test_406_when_json_is_not_acceptable(self, api: Api) -> None:
        r = api.request("GET", "/pets", headers={"Accept": "text/html"})
        assert r.status_code == 406
        assert r.headers["content-type"] == "application/problem+json"

    @pytest.mark.parametrize(
        "accept", ["*/*", "application/json", "application/*", "text/html, application/json;q=0.5"]
    )
    def test_acceptable_variants(self, api: Api, accept: str) -> None:
        assert api.request("GET", "/pets", headers={"Accept": accept}).status_code == 200

    def test_q_zero_excludes(self, api: Api) -> None:
        r = api.request("GET", "/pets", headers={"Accept": "application/json;q=0"})
        assert r.status_code == 406


class TestBodyLimits:
    def test_413_from_content_length_before_reading(self, api: Api) -> None:
        big = b'{"name": "' + b"x" * (1024 * 1024) + b'"}'
        r = api.request("POST", "/users", content=big, headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        assert r.json()["detail"] == "The request body exceeds the limit of 1048576 bytes."

    def test_413_while_streaming_without_content_length(self, api: Api) -> None:
        def chunks() -> Iterator[bytes]:
            yield b'{"username": "'
            for _ in range(20):
                yield b"y" * 65536
            yield b'"}'

        r = api.request(
            "POST", "/users", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 413
        assert r.json()["type"] == "https://petstoreapi.com/errors/payload-too-large"

    def test_chunked_body_within_the_limit_is_served(self, api: Api) -> None:
        def chunks() -> Iterator[bytes]:
            yield b'{"username": "chunky", "email": "chunky@example.com", '
            yield b'"password": "long-enough-pw", "firstName": "C", "lastName": "K"}'

        r = api.request(
            "POST", "/users", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 201, r.text

    def test_400_for_garbage_content_length(self, api: Api) -> None:
        r = api.client.post(
            "/v1/users",
            content=b"{}",
            headers={"Content-Length": "abc", "Content-Type": "application/json"},
        )
        assert r.status_code == 400


class TestMalformedBodies:
    def test_invalid_utf8_is_400(self, api: Api) -> None:
        r = api.request(
            "POST",
            "/users",
            content=b'{"username": "\xff\xfe"}',
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 400
        assert r.json()["errors"] == [
            {"field": "body", "message": "Request body is not valid UTF-8.", "code": "encoding"}
        ]

    def test_malformed_json_is_400(self, api: Api) -> None:
        r = api.request(
            "POST", "/users", content=b'{"username": ', headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 400
        assert r.json()["errors"][0]["code"] == "malformed"

    def test_415_wrong_content_type(self, api: Api) -> None:
        r = api.request(
            "POST", "/users", content=b"<xml/>", headers={"Content-Type": "application/xml"}
        )
        assert r.status_code == 415

    def test_400_empty_body(self, api: Api) -> None:
        r = api.request("POST", "/users", headers={"Content-Type": "application/json"})
        assert r.status_code == 400

    def test_400_invalid_tenant_header(self, api: Api) -> None:
        r = api.client.get("/v1/pets", headers={"X-Tenant-ID": "not-a-uuid"})
        assert r.status_code == 400
        assert r.json()["errors"][0]["field"] == "X-Tenant-ID"


class TestUnexpectedErrors:
    def test_500_problem_reveals_nothing(self, api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
        async def boom(*_args: object) -> None:
            raise RuntimeError("secret database password in traceback")

        monkeypatch.setattr(pet_service, "get_pet", boom)
        r = api.request("GET", "/pets/019b4132-70aa-764f-b315-e2803d882a24")
        assert r.status_code == 500
        assert "secret" not in r.text
        assert "Traceback" not in r.text
        assert r.json() == problem(
            500,
            "internal-error",
            "Internal Server Error",
            "An unexpected error occurred.",
            "/v1/pets/019b4132-70aa-764f-b315-e2803d882a24",
        )

    def test_unknown_path_is_404_problem(self, api: Api) -> None:
        r = api.request("GET", "/nothing-here")
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"

    def test_request_id_is_echoed(self, api: Api) -> None:
        r = api.request("GET", "/pets", headers={"X-Request-ID": "abc123"})
        assert r.headers["x-request-id"] == "abc123"
        assert len(api.request("GET", "/pets").headers["x-request-id"]) == 32


def test_error_body_is_never_half_written(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure discovered while the response is being sent (here: the handler's body breaks
    the spec, which response validation catches) gives one complete 500 problem: no 200 status
    line sent ahead of it, none of the refused body, and a Content-Length that is the body's."""
    pet = api.create_pet(api.admin_token())

    def broken(*_args: object) -> dict[str, object]:
        return {"id": pet["id"], "name": "LEAKED-" + "x" * 5000, "species": "DRAGON"}

    monkeypatch.setattr(pets_handlers, "dump_pet", broken)
    r = api.request("GET", f"/pets/{pet['id']}")
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/problem+json"
    assert int(r.headers["content-length"]) == len(r.content)
    assert r.json() == problem(
        500,
        "internal-error",
        "Internal Server Error",
        "An unexpected error occurred.",
        f"/v1/pets/{pet['id']}",
    )
    assert b"LEAKED" not in r.content
    assert "etag" not in r.headers  # nothing of the refused response's head either


def test_a_rejected_create_leaves_no_row_behind(api: Api) -> None:
    token = api.admin_token()
    api.request("POST", "/pets", token, json={**PET, "species": "DRAGON"})
    api.request(
        "POST",
        "/pets",
        token,
        content=b'{"name": "\xff"}',
        headers={"Content-Type": "application/json"},
    )
    assert api.request("GET", "/pets").json()["pagination"]["totalItems"] == 0


class TestHostHeader:
    def test_malformed_host_is_400_and_nothing_is_written(self, api: Api) -> None:
        body = {
            "username": "hosty",
            "email": "hosty@example.com",
            "password": "long-enough-pw",
            "firstName": "H",
            "lastName": "Y",
        }
        r = api.request("POST", "/users", json=body, headers={"Host": "%zz"})
        assert r.status_code == 400
        assert r.json()["detail"] == "Invalid Host header."
        assert api.request("POST", "/users", json=body).status_code == 201

    def test_public_url_setting_wins_over_host(self, settings) -> None:  # type: ignore[no-untyped-def]
        from app import create_app

        app = create_app(settings.with_overrides(public_url="https://api.example.org"))
        with app.test_client() as client:
            r = client.get("/v1/pets", headers={"Host": "localhost:8080"})
            assert client.get("/v1/pets", headers={"Host": "evil.example"}).status_code == 400
        assert r.json()["links"]["self"].startswith("https://api.example.org/v1/pets?")
