"""Durability: events committed while no worker runs survive a hard kill of the server and are
delivered by the next server process."""

from __future__ import annotations

import signal
import time
import uuid

import httpx
import pytest

from settings import Settings
from tests.conftest import PASSWORD, PET, Api, server_process
from tests.webhook_receiver import receiver


def test_pending_events_survive_a_kill_and_arrive_after_restart(
    api: Api, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    logs = tmp_path_factory.mktemp("restart")
    admin = api.admin_token()  # through the in-process app: same database
    tenant = {"X-Tenant-ID": api.tenant or ""}
    with receiver() as hook:
        with server_process(
            settings, logs, PETSTORE_WEBHOOK_WORKER="0", PETSTORE_WEBHOOK_ALLOW_LOOPBACK="1"
        ) as (base, first):
            http = httpx.Client(base_url=base, headers=tenant, timeout=30)
            name = f"u{uuid.uuid4().hex[:10]}"
            profile = {"firstName": "A", "lastName": "B", "email": f"{name}@example.com"}
            http.post("/users", json={"username": name, "password": PASSWORD, **profile})
            login = http.post("/auth/tokens", json={"username": name, "password": PASSWORD})
            token = login.json()["token"]
            user = {"Authorization": f"Bearer {token}"}
            r = http.post("/webhooks", headers=user,
                          json={"url": hook.url, "events": ["order.statusChanged"]})  # fmt: skip
            assert r.status_code == 201, r.text
            pet = http.post("/pets", json=PET, headers={"Authorization": f"Bearer {admin}"}).json()
            order = http.post("/orders", json={"petId": pet["id"]}, headers=user).json()
            assert http.delete(f"/orders/{order['id']}", headers=user).status_code == 204
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        time.sleep(0.5)
        assert hook.requests == []
        with server_process(
            settings, logs, PETSTORE_WEBHOOK_WORKER="1", PETSTORE_WEBHOOK_ALLOW_LOOPBACK="1",
            PETSTORE_WEBHOOK_POLL_SECONDS="0.1",
        ):  # fmt: skip
            deadline = time.monotonic() + 20
            while not hook.requests and time.monotonic() < deadline:
                time.sleep(0.1)
        (event,) = hook.events("order.statusChanged")
        assert event["data"]["order"]["id"] == order["id"]
        assert event["data"]["newStatus"] == "CANCELLED"
