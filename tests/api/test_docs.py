"""Docs for humans: Swagger UI and the served spec."""

from __future__ import annotations

from starlette.testclient import TestClient


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
