"""Per-client rate limiting with IETF RateLimit headers: in-process, and shared through Redis."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from app import create_app
from infra.counters import BACKOFF_SECONDS
from settings import Settings
from tests.conftest import Api

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
ONE_IP, OTHER_IP, THIRD_IP = (
    ("198.51.100.21", 40000),
    ("198.51.100.22", 40000),
    ("198.51.100.23", 40000),
)


def _client(settings: Settings, **overrides: Any) -> Generator[TestClient, None, None]:
    app = create_app(settings.with_overrides(**overrides))
    with app.test_client() as client:
        yield client


@pytest.fixture
def limited(settings: Settings) -> Iterator[TestClient]:
    yield from _client(settings, rate_limit_per_minute=3)


class TestInProcess:
    def test_headers_count_down_then_429_with_retry_after(self, limited: TestClient) -> None:
        remaining = [limited.get("/v1/pets").headers["ratelimit-remaining"] for _ in range(3)]
        assert remaining == ["2", "1", "0"]
        r = limited.get("/v1/pets")
        assert r.status_code == 429
        assert r.headers["ratelimit-limit"] == "3"
        assert 0 < int(r.headers["retry-after"]) <= 60
        assert r.headers["ratelimit-policy"] == "3;w=60"
        assert r.json()["type"] == "https://petstoreapi.com/errors/rate-limit-exceeded"
        assert r.json()["title"] == "Too Many Requests"

    def test_clients_have_separate_budgets(self, settings: Settings, api: Api) -> None:
        """One client spending its budget leaves every other client's whole: another address,
        and an account (its own budget) on another address."""
        _, token = api.user_token()
        app = create_app(settings.with_overrides(rate_limit_per_minute=3))
        with (
            app.test_client(client=ONE_IP) as spender,
            app.test_client(client=OTHER_IP) as other,
            app.test_client(client=THIRD_IP) as member,
        ):
            assert [spender.get("/v1/pets").status_code for _ in range(3)] == [200, 200, 200]
            assert spender.get("/v1/pets").status_code == 429
            r = other.get("/v1/pets")
            assert r.status_code == 200
            assert r.headers["ratelimit-remaining"] == "2"  # untouched by the spender's requests
            r = member.get("/v1/pets", headers=api.headers(token))
            assert r.status_code == 200
            assert r.headers["ratelimit-remaining"] == "2"
            assert spender.get("/v1/pets").status_code == 429  # and the spender stays refused

    def test_ipv6_clients_share_a_budget_per_64(self, settings: Settings) -> None:
        """An IPv6 client picks any address of its /64 at will: the /64 is one budget, another
        /64 has its own; an IPv4-mapped address counts as the IPv4 address."""
        app = create_app(settings.with_overrides(rate_limit_per_minute=2))
        with (
            app.test_client(client=("2001:db8:1:2::1", 1234)) as first,
            app.test_client(client=("2001:db8:1:2:ffff::9", 1234)) as same_64,
            app.test_client(client=("2001:db8:1:3::1", 1234)) as other_64,
            app.test_client(client=("198.51.100.41", 1234)) as v4,
            app.test_client(client=("::ffff:198.51.100.41", 1234)) as mapped,
        ):
            assert [first.get("/v1/pets").status_code for _ in range(2)] == [200, 200]
            assert same_64.get("/v1/pets").status_code == 429
            r = other_64.get("/v1/pets")
            assert r.status_code == 200
            assert r.headers["ratelimit-remaining"] == "1"
            assert [v4.get("/v1/pets").status_code for _ in range(2)] == [200, 200]
            assert mapped.get("/v1/pets").status_code == 429

    def test_an_invalid_token_does_not_buy_a_fresh_budget(self, limited: TestClient) -> None:
        for _ in range(4):
            limited.get("/v1/pets")
        assert limited.get("/v1/pets").status_code == 429
        other = limited.get("/v1/pets", headers={"Authorization": "Bearer not-a-token"})
        assert other.status_code == 429

    def test_a_logged_out_token_spends_no_accounts_budget(
        self, settings: Settings, api: Api
    ) -> None:
        """A stolen token its owner logged out is refused, and its requests (from any address)
        are counted against that address only, never against the owner's account."""
        user, stolen = api.user_token()
        mine = api.login(user["username"])
        assert api.request("DELETE", "/auth/tokens/current", stolen).status_code == 204
        app = create_app(settings.with_overrides(rate_limit_per_minute=3))
        path = f"/v1/users/{user['id']}"
        with (
            app.test_client(client=ONE_IP) as thief,
            app.test_client(client=OTHER_IP) as owner,
        ):
            for _ in range(3):
                assert thief.get(path, headers=api.headers(stolen)).status_code == 401
            r = owner.get(path, headers=api.headers(mine))
            assert r.status_code == 200
            assert r.headers["ratelimit-remaining"] == "2"  # the owner's first request

    def test_zero_turns_limiting_off(self, settings: Settings) -> None:
        for client in _client(settings, rate_limit_per_minute=0):
            for _ in range(5):
                r = client.get("/v1/pets")
                assert r.status_code == 200
                assert "ratelimit-limit" not in r.headers


@pytest.mark.redis
class TestRedis:
    def test_two_workers_share_one_budget(self, settings: Settings) -> None:
        prefix = f"test:{uuid.uuid4().hex}:"
        first = _client(settings, rate_limit_per_minute=4, redis_url=REDIS_URL, redis_prefix=prefix)
        second = _client(
            settings, rate_limit_per_minute=4, redis_url=REDIS_URL, redis_prefix=prefix
        )
        a, b = next(first), next(second)
        try:
            statuses = [c.get("/v1/pets").status_code for c in (a, b, a, b, a)]
            assert statuses == [200, 200, 200, 200, 429]
            assert b.get("/v1/pets").headers["ratelimit-remaining"] == "0"
        finally:
            for gen in (first, second):
                gen.close()


class TestRedisUnreachable:
    """A Redis outage neither fails requests nor lifts the budgets: each worker counts in its
    own memory until Redis answers again."""

    def test_budgets_still_hold_in_the_worker(self, settings: Settings) -> None:
        dead = "redis://127.0.0.1:1/0"  # nothing listens on port 1
        for client in _client(settings, rate_limit_per_minute=3, redis_url=dead):
            answers = [client.get("/v1/pets") for _ in range(4)]
            assert [r.status_code for r in answers] == [200, 200, 200, 429]
            assert answers[0].headers["ratelimit-limit"] == "3"
            assert int(answers[3].headers["retry-after"]) > 0

    def test_counting_returns_to_redis_when_it_is_back(
        self, settings: Settings, tmp_path: Path
    ) -> None:
        server = shutil.which("redis-server")
        if server is None:
            pytest.skip("redis-server is not installed here")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        url = f"redis://127.0.0.1:{port}/0"
        prefix = f"test:{uuid.uuid4().hex}:"

        def start() -> subprocess.Popen[bytes]:
            proc = subprocess.Popen(  # noqa: S603 - the machine's redis-server, our arguments
                [server, "--port", str(port), "--save", "", "--appendonly", "no",
                 "--dir", str(tmp_path)],
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
            probe = redis.Redis.from_url(url)
            deadline = time.monotonic() + 20
            while True:
                try:
                    probe.ping()
                    return proc
                except redis.ConnectionError:
                    assert time.monotonic() < deadline, "redis-server did not start"
                    time.sleep(0.05)

        def counted() -> list[Any]:
            return redis.Redis.from_url(url).keys(f"{prefix}*")

        proc = start()
        try:
            for client in _client(
                settings, rate_limit_per_minute=100, redis_url=url, redis_prefix=prefix
            ):
                assert client.get("/v1/pets").status_code == 200
                assert counted()  # counted in Redis
                proc.terminate()
                proc.wait(timeout=20)
                down = [client.get("/v1/pets") for _ in range(3)]
                assert [r.status_code for r in down] == [200] * 3  # not a 500
                assert all("ratelimit-remaining" in r.headers for r in down)
                proc = start()  # a fresh, empty Redis on the same port
                assert not counted()
                time.sleep(BACKOFF_SECONDS + 0.2)
                assert client.get("/v1/pets").status_code == 200
                assert counted()  # counting in Redis again
        finally:
            proc.terminate()
            proc.wait(timeout=20)
