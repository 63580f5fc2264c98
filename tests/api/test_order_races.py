"""20 clients order one pet at the same moment against the live server (2 worker processes):
exactly one 201, nineteen 409, one order row, the pet PENDING."""

from __future__ import annotations

import threading

import httpx

from tests.conftest import Api


def test_twenty_concurrent_orders_over_http_one_wins(api: Api, live_server: str) -> None:
    pet = api.create_pet(api.admin_token())
    tokens = [api.user_token()[1] for _ in range(4)]
    barrier = threading.Barrier(20)
    statuses: list[int] = []
    lock = threading.Lock()

    def buyer(i: int) -> None:
        headers = {"X-Tenant-ID": api.tenant or "", "Authorization": f"Bearer {tokens[i % 4]}"}
        with httpx.Client(base_url=live_server, headers=headers, timeout=60) as http:
            barrier.wait()
            r = http.post("/orders", json={"petId": pet["id"]})
        with lock:
            statuses.append(r.status_code)

    threads = [threading.Thread(target=buyer, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(statuses) == [201] + [409] * 19
    assert api.request("GET", f"/pets/{pet['id']}").json()["status"] == "PENDING"
