"""Login throttling through the real app: failures are counted per (username, client address),
so someone else's failures never lock the real user out from their own address; login has its
own per-address budget; several workers without Redis are warned about at startup."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from starlette.testclient import TestClient

from app import create_app, shared_counters_warning
from services.accounts.passwords import HASHES
from settings import Settings
from tests.conftest import PASSWORD, Api

ATTACKER, OWNER = "203.0.113.66", "198.51.100.7"


class Addressed:
    """The app as seen from one client address at a time (``address`` may change between
    requests), as uvicorn reports the peer in ``scope["client"]``."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.address = OWNER

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope = {**scope, "client": (self.address, 40000)}
        await self.app(scope, receive, send)


@pytest.fixture
def addressed(settings: Settings) -> Iterator[tuple[Addressed, TestClient]]:
    wrapper = Addressed(create_app(settings.with_overrides(login_rate_limit_per_minute=0)))
    with TestClient(wrapper) as client:
        yield wrapper, client


def _login(api: Api, username: str, password: str) -> Any:
    return api.request("POST", "/auth/tokens", json={"username": username, "password": password})


def test_failures_from_one_address_do_not_lock_the_user_out_of_another(
    addressed: tuple[Addressed, TestClient], settings: Settings
) -> None:
    wrapper, client = addressed
    api = Api(client, settings, str(uuid.uuid4()))
    user = api.register()
    wrapper.address = ATTACKER
    for _ in range(settings.login_max_failures):
        assert _login(api, user["username"], "a-wrong-guess").status_code == 401
    refused = _login(api, user["username"], PASSWORD)  # even the right password, from there
    assert refused.status_code == 429
    assert 0 < int(refused.headers["retry-after"]) <= settings.login_window_seconds
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "https://petstoreapi.com/errors/rate-limit-exceeded"
    wrapper.address = OWNER
    assert _login(api, user["username"], PASSWORD).status_code == 201
    wrapper.address = ATTACKER  # the owner's success does not unlock the attacker's address
    assert _login(api, user["username"], PASSWORD).status_code == 429


def test_failures_lock_an_ipv6_attackers_whole_64(
    addressed: tuple[Addressed, TestClient], settings: Settings
) -> None:
    """Moving to another address of the same /64 does not buy fresh guesses; another /64 (or
    the owner's IPv4 address) is not affected."""
    wrapper, client = addressed
    api = Api(client, settings, str(uuid.uuid4()))
    user = api.register()
    for i in range(settings.login_max_failures):
        wrapper.address = f"2001:db8:66:1::{i + 1:x}"
        assert _login(api, user["username"], "a-wrong-guess").status_code == 401
    wrapper.address = "2001:db8:66:1:abcd::1"
    assert _login(api, user["username"], PASSWORD).status_code == 429
    wrapper.address = "2001:db8:66:2::1"
    assert _login(api, user["username"], PASSWORD).status_code == 201


def test_logins_refused_for_a_full_hashing_queue_are_not_counted(
    addressed: tuple[Addressed, TestClient], settings: Settings
) -> None:
    """While someone keeps the password-hashing queue full, the owner's logins get 503; none of
    them counts as a failure, so the owner's address is not locked once the queue drains."""
    _, client = addressed
    api = Api(client, settings, str(uuid.uuid4()))
    user = api.register()
    with ExitStack() as full:
        for _ in range(HASHES.capacity):
            full.enter_context(HASHES.ticket())
        for _ in range(settings.login_max_failures + 2):
            r = _login(api, user["username"], PASSWORD)
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"]
    assert _login(api, user["username"], PASSWORD).status_code == 201


def test_login_has_its_own_budget_per_client_address(settings: Settings) -> None:
    wrapper = Addressed(create_app(settings.with_overrides(login_rate_limit_per_minute=2)))
    with TestClient(wrapper) as client:
        api = Api(client, settings, str(uuid.uuid4()))
        user = api.register()
        wrapper.address = ATTACKER
        assert _login(api, user["username"], PASSWORD).status_code == 201
        assert _login(api, "nobody-at-all", PASSWORD).status_code == 401
        refused = _login(api, user["username"], PASSWORD)
        assert refused.status_code == 429
        assert 0 < int(refused.headers["retry-after"]) <= 60
        assert "2;w=60" in refused.headers["ratelimit-policy"]
        assert refused.json()["type"] == "https://petstoreapi.com/errors/rate-limit-exceeded"
        # other operations from that address keep the general budget
        assert api.request("GET", "/pets").status_code == 200
        wrapper.address = OWNER
        assert _login(api, user["username"], PASSWORD).status_code == 201


def test_several_workers_without_redis_are_warned_about(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    assert shared_counters_warning(settings.with_overrides(workers=1)) is None
    assert (
        shared_counters_warning(settings.with_overrides(workers=3, redis_url="redis://r")) is None
    )
    message = shared_counters_warning(settings.with_overrides(workers=3, redis_url=None))
    assert message is not None
    assert "3 workers without REDIS_URL" in message
    with caplog.at_level(logging.WARNING, logger="petstore"):
        create_app(settings.with_overrides(workers=3, redis_url=None))
    assert message in caplog.text
    # make serve-prod tells the app how many workers gunicorn runs
    env = {"DATABASE_URL": settings.database_url, "PETSTORE_JWT_SECRET": "k" * 32}
    assert Settings.from_env({**env, "PETSTORE_WORKERS": "4"}).workers == 4
    assert Settings.from_env({**env, "WEB_CONCURRENCY": "3"}).workers == 3
    assert Settings.from_env(env).workers == 1
