"""Abuse budgets (issue 11, item 5): authenticated traffic is counted per IP address as well as
per account, registration has an hourly budget per IP address, and the password-hashing queue
is bounded (503 + Retry-After when full)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from app import create_app
from services.accounts import passwords
from settings import Settings
from tests.conftest import PASSWORD, Api

ONE_IP = ("198.51.100.7", 40000)
OTHER_IP = ("198.51.100.8", 40000)
CHAT = {"model": "pet-advisor-1", "messages": [{"role": "user", "content": "How do I feed a cat?"}]}


def _app(settings: Settings, **overrides: Any) -> Any:
    return create_app(settings.with_overrides(**overrides))


def _tokens(api: Api, n: int) -> list[str]:
    """n accounts in the test's tenant, logged in through the (unlimited) session client."""
    return [api.user_token()[1] for _ in range(n)]


def _get_pets(client: TestClient, api: Api, token: str) -> Any:
    return client.get("/v1/pets", headers=api.headers(token))


class TestPerAddress:
    def test_two_accounts_from_one_ip_share_the_ip_budget(
        self, settings: Settings, api: Api
    ) -> None:
        first, second = _tokens(api, 2)
        app = _app(settings, rate_limit_per_minute=4)
        with app.test_client(client=ONE_IP) as here, app.test_client(client=OTHER_IP) as there:
            assert [_get_pets(here, api, first).status_code for _ in range(2)] == [200, 200]
            r = _get_pets(here, api, second)
            assert r.status_code == 200
            # The second account has 3 of its own left, the address 1: the tighter is reported.
            assert r.headers["ratelimit-remaining"] == "1"
            assert r.headers["ratelimit-limit"] == "4"
            assert r.headers["ratelimit-policy"] == "4;w=60"
            assert _get_pets(here, api, second).headers["ratelimit-remaining"] == "0"
            refused = _get_pets(here, api, second)  # its own budget is not spent; the IP's is
            assert refused.status_code == 429
            assert refused.headers["ratelimit-remaining"] == "0"
            assert 0 < int(refused.headers["retry-after"]) <= 60
            # The same account from another address still has its own budget left.
            r = _get_pets(there, api, second)
            assert r.status_code == 200
            assert r.headers["ratelimit-remaining"] == "0"  # 4 counted for the account now
            assert _get_pets(there, api, second).status_code == 429

    def test_accounts_from_one_ip_share_the_chat_budget(self, settings: Settings, api: Api) -> None:
        first, second = _tokens(api, 2)
        app = _app(settings, chat_rate_limit_per_minute=2)
        with app.test_client(client=ONE_IP) as client:

            def chat(token: str) -> Any:
                return client.post("/v1/chat/completions", json=CHAT, headers=api.headers(token))

            assert [chat(first).status_code for _ in range(2)] == [200, 200]
            refused = chat(second)
            assert refused.status_code == 429
            assert refused.headers["ratelimit-limit"] == "2"
            assert "retry-after" in refused.headers


def _new_user(name: str | None = None) -> dict[str, str]:
    name = name or f"r{uuid.uuid4().hex[:10]}"
    return {
        "username": name,
        "email": f"{name}@example.com",
        "password": PASSWORD,
        "firstName": "Reg",
        "lastName": "Budget",
    }


class TestRegistrationBudget:
    def test_registrations_per_ip_are_limited_per_hour(self, settings: Settings, api: Api) -> None:
        app = _app(settings, register_rate_limit_per_hour=2)
        headers = api.headers()
        with app.test_client(client=ONE_IP) as here, app.test_client(client=OTHER_IP) as there:
            taken = _new_user()
            first = here.post("/v1/users", json=taken, headers=headers)
            assert first.status_code == 201
            assert first.headers["ratelimit-limit"] == "2"
            assert first.headers["ratelimit-remaining"] == "1"
            assert first.headers["ratelimit-policy"] == "100000;w=60, 2;w=3600"
            assert 3500 < int(first.headers["ratelimit-reset"]) <= 3600
            # A refused attempt (duplicate) counts too: it cost a password hash.
            assert here.post("/v1/users", json=taken, headers=headers).status_code == 409
            r = here.post("/v1/users", json=_new_user(), headers=headers)
            assert r.status_code == 429
            assert r.headers["content-type"] == "application/problem+json"
            assert 3500 < int(r.headers["retry-after"]) <= 3600
            assert r.headers["ratelimit-remaining"] == "0"
            assert r.json()["type"] == "https://petstoreapi.com/errors/rate-limit-exceeded"
            # Another address has its own budget; other operations are not affected.
            assert there.post("/v1/users", json=_new_user(), headers=headers).status_code == 201
            pets = here.get("/v1/pets", headers=headers)
            assert pets.status_code == 200
            assert pets.headers["ratelimit-policy"] == "100000;w=60"

    def test_zero_turns_the_registration_budget_off(self, settings: Settings, api: Api) -> None:
        app = _app(settings, register_rate_limit_per_hour=0)
        with app.test_client(client=ONE_IP) as client:
            for _ in range(3):
                r = client.post("/v1/users", json=_new_user(), headers=api.headers())
                assert r.status_code == 201


@pytest.fixture
def one_place(settings: Settings) -> Iterator[Any]:
    """An app whose password-hashing queue holds one hash per process (restored afterwards)."""
    try:
        yield _app(settings, password_hash_queue=1)
    finally:
        passwords.HASHES.configure(settings.password_hash_queue)


class TestHashingQueue:
    def test_a_full_hashing_queue_gives_503_with_retry_after(
        self, one_place: Any, api: Api
    ) -> None:
        user, _ = api.user_token()
        login = {"username": user["username"], "password": PASSWORD}
        with one_place.test_client() as client:
            with passwords.HASHES.ticket():  # a hash in progress takes the only place
                for path, body in (("/v1/users", _new_user()), ("/v1/auth/tokens", login)):
                    r = client.post(path, json=body, headers=api.headers())
                    assert r.status_code == 503, r.text
                    assert r.headers["retry-after"] == "1"
                    assert r.json() == {
                        "type": "https://petstoreapi.com/errors/service-unavailable",
                        "title": "Service Unavailable",
                        "status": 503,
                        "detail": "Too many password checks are in progress. Try again shortly.",
                        "instance": path,
                    }
            assert passwords.HASHES.admitted == 0  # the refused calls held no place
            r = client.post("/v1/users", json=_new_user(), headers=api.headers())
            assert r.status_code == 201
            r = client.post("/v1/auth/tokens", json=login, headers=api.headers())
            assert r.status_code == 201
