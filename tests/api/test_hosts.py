"""Forged Host (issue 11, item 7): only the server's own host names are served, any port; any
other Host gets a 400 problem before it can reach a link or a Location."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from app import create_app
from settings import Settings


def _client(settings: Settings, **overrides: Any) -> Any:
    return create_app(settings.with_overrides(**overrides)).test_client()


def test_defaults_are_the_loopback_names_plus_the_public_urls_host() -> None:
    base = {"PETSTORE_JWT_SECRET": "x" * 40, "DATABASE_URL": "sqlite:///:memory:"}
    assert Settings.from_env(base).served_hosts == frozenset({"localhost", "127.0.0.1", "[::1]"})
    public = Settings.from_env({**base, "PETSTORE_PUBLIC_URL": "https://API.example.com:8443/"})
    assert public.served_hosts == frozenset({"localhost", "127.0.0.1", "[::1]", "api.example.com"})
    chosen = Settings.from_env(
        {**base, "PETSTORE_ALLOWED_HOSTS": " pets.example.org ,[::1]", "PETSTORE_PUBLIC_URL": ""}
    )
    assert chosen.served_hosts == frozenset({"pets.example.org", "[::1]"})
    assert Settings.from_env({**base, "PETSTORE_ALLOWED_HOSTS": "*"}).served_hosts is None


@pytest.mark.parametrize("path", ["/v1/pets", "/v1/graphql", "/v1/openapi.json"])
def test_a_forged_host_gets_400(client: TestClient, path: str) -> None:
    r = client.get(path, headers={"Host": "attacker.example"})
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json() == {
        "type": "https://petstoreapi.com/errors/bad-request",
        "title": "Bad Request",
        "status": 400,
        "detail": "This server does not serve that Host.",
        "instance": path,
    }


def test_a_forged_host_never_reaches_a_location(client: TestClient) -> None:
    body = {
        "username": "hostforger",
        "email": "hostforger@example.com",
        "password": "correct-horse-42",
        "firstName": "Host",
        "lastName": "Forger",
    }
    r = client.post("/v1/users", json=body, headers={"Host": "attacker.example:80"})
    assert r.status_code == 400
    assert "location" not in r.headers


@pytest.mark.parametrize("host", ["testserver", "LOCALHOST:8080", "127.0.0.1:1"])
def test_served_names_are_served_on_any_port(client: TestClient, host: str) -> None:
    r = client.get("/v1/pets", headers={"Host": host})
    assert r.status_code == 200
    assert r.json()["links"]["self"].startswith(f"http://{host}/v1/pets")


def test_the_default_serves_ipv6_loopback_and_the_public_url(settings: Settings) -> None:
    with _client(settings, allowed_hosts=(), public_url="https://api.example.com") as client:
        for host in ("[::1]:8080", "api.example.com", "localhost"):
            assert client.get("/v1/pets", headers={"Host": host}).status_code == 200, host
        assert client.get("/v1/pets").status_code == 400  # testserver is not a default name
        assert client.get("/v1/pets", headers={"Host": "[::2]"}).status_code == 400


def test_star_serves_any_host(settings: Settings) -> None:
    with _client(settings, allowed_hosts=("*",)) as client:
        assert client.get("/v1/pets", headers={"Host": "anything.example"}).status_code == 200
        assert client.get("/v1/pets", headers={"Host": "bad host"}).status_code == 400
