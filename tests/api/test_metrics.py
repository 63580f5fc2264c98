"""GET /metrics (web/metrics.py), through the real app: counters and a latency histogram per
operationId (either spec), method and status; unknown paths are "unmatched"; only served to the
PETSTORE_METRICS_TOKEN bearer; with two workers it sums both."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from app import create_app
from settings import Settings
from tests.conftest import Api, server_process

TOKEN = "metrics-token-for-tests"
SCRAPE = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def metrics_client(settings: Settings) -> Iterator[TestClient]:
    with create_app(settings.with_overrides(metrics_token=TOKEN)).test_client() as c:
        yield c


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition text (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.fullmatch(r"(\w+)\{([^}]*)\} (\S+)", line)
        if m and m[1] == name and ",".join(sorted(m[2].split(","))) == want:
            return float(m[3])
    return 0.0


def test_counts_and_times_each_operation(
    metrics_client: TestClient, settings: Settings, api: Api
) -> None:
    mine = Api(metrics_client, settings, api.tenant)
    admin = api.admin_token()  # through the session app: same database and key
    assert mine.request("GET", "/pets").status_code == 200
    assert mine.request("GET", "/pets").status_code == 200
    assert mine.request("GET", f"/pets/{uuid.uuid4()}").status_code == 404
    assert mine.request("GET", "/admin/dashboard", admin).status_code == 200
    assert mine.request("GET", f"/nowhere/{uuid.uuid4()}").status_code == 404
    search = {"criteria": {"species": ["CAT"]}}
    assert mine.request("QUERY", "/pets/search", json=search).status_code == 200

    r = metrics_client.get("/metrics", headers=SCRAPE)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    total = "petstore_requests_total"
    assert sample(text, total, operation="listPets", method="GET", status="200") == 2
    assert sample(text, total, operation="getPet", method="GET", status="404") == 1
    assert sample(text, total, operation="getDashboardStats", method="GET", status="200") == 1
    assert sample(text, total, operation="unmatched", method="GET", status="404") == 1
    # QUERY /v1/pets/search is served as searchPets (OpenAPI 3.0.3 declares it as POST)
    assert sample(text, total, operation="searchPets", method="QUERY", status="200") == 1
    assert "/nowhere" not in text  # the raw path never becomes a label
    hist = "petstore_request_duration_seconds"
    labels = {"operation": "listPets", "method": "GET", "status": "200"}
    assert sample(text, hist + "_count", **labels) == 2
    assert sample(text, hist + "_bucket", le="+Inf", **labels) == 2
    assert sample(text, hist + "_sum", **labels) > 0


def test_refused_without_the_token(metrics_client: TestClient, client: Any) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        r = metrics_client.get("/metrics", headers=headers)
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert "petstore_requests" not in r.text
    # Scrapers come by address, like probes: no Host allow-list.
    r = metrics_client.get("/metrics", headers={**SCRAPE, "Host": "10.1.2.3:9000"})
    assert r.status_code == 200
    # Without PETSTORE_METRICS_TOKEN there is no /metrics at all.
    assert client.get("/metrics", headers=SCRAPE).status_code == 404


def test_two_workers_are_summed(settings: Settings, tmp_path: Any) -> None:
    env = {"PETSTORE_WORKERS": "2", "PETSTORE_METRICS_TOKEN": TOKEN}
    with server_process(settings, tmp_path, workers=2, **env) as (base, proc):
        origin = base.removesuffix("/v1")
        files = settings.var_dir / "metrics" / str(proc.pid)  # one directory per master
        sent = 0
        # Each new connection goes to whichever worker accepts it; go on until both have
        # counted (each worker writes its own file), then a little more.
        while sent < 20 or (len(list(files.glob("counter_*.db"))) < 2 and sent < 500):
            with httpx.Client(base_url=origin, timeout=30) as one:
                assert one.get("/v1/pets").status_code == 200
            sent += 1
        assert len(list(files.glob("counter_*.db"))) == 2
        scrapes = []
        for _ in range(4):  # whichever worker answers the scrape, it sums both
            with httpx.Client(base_url=origin, timeout=30) as one:
                scrapes.append(one.get("/metrics", headers=SCRAPE).text)
    labels = {"operation": "listPets", "method": "GET", "status": "200"}
    for text in scrapes:
        assert sample(text, "petstore_requests_total", **labels) == sent
