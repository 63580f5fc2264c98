"""Docs for humans: Swagger UI and the served spec."""

from __future__ import annotations

import yaml
from starlette.testclient import TestClient

from settings import ROOT


def test_swagger_ui(client: TestClient) -> None:
    r = client.get("/v1/ui/")
    assert r.status_code == 200
    assert "text/html" in r.headers["content-type"]
    assert "swagger" in r.text.lower()


def test_openapi_json(client: TestClient) -> None:
    r = client.get("/v1/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert spec["openapi"] == "3.0.3"
    assert "/pets" in spec["paths"]


def test_the_served_spec_is_the_spec_as_written(client: TestClient) -> None:
    """Refs and components kept (generators build named models from them), byte for byte the
    file in YAML, the same document in JSON; the reference's servers listed after this one."""
    written = (ROOT / "spec" / "openapi.yaml").read_bytes()
    as_yaml = client.get("/v1/openapi.yaml")
    assert as_yaml.status_code == 200
    assert as_yaml.headers["content-type"].startswith("application/yaml")
    assert as_yaml.content == written
    as_json = client.get("/v1/openapi.json").json()
    assert as_json == yaml.safe_load(written)
    assert '"$ref"' in client.get("/v1/openapi.json").text
    assert "Pet" in as_json["components"]["schemas"]
    assert [s["url"] for s in as_json["servers"]] == [
        "/v1",
        "https://api.petstoreapi.com/v1",
        "https://sandbox.petstoreapi.com/v1",
    ]
    assert client.head("/v1/openapi.yaml").content == b""


def test_redoc_renders_the_served_spec(client: TestClient) -> None:
    r = client.get("/v1/redoc")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert '<redoc spec-url="/v1/openapi.json">' in r.text
    assert "redoc@2.5.0/bundles/redoc.standalone.js" in r.text
