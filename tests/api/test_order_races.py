"""Races against the live server (2 worker processes): 20 clients order one pet at the same
moment (exactly one 201, nineteen 409, the pet PENDING); one member orders 8 pets at the same
moment (exactly 3 placed: the cap on unpaid orders does not overshoot)."""

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


def test_concurrent_orders_by_one_member_never_overshoot_the_cap(
    api: Api, live_server: str
) -> None:
    admin = api.admin_token()
    pets = [api.create_pet(admin)["id"] for _ in range(8)]
    token = api.user_token()[1]
    barrier = threading.Barrier(len(pets))
    answers: list[tuple[int, str]] = []
    lock = threading.Lock()

    def buyer(pet_id: str) -> None:
        headers = {"X-Tenant-ID": api.tenant or "", "Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=live_server, headers=headers, timeout=60) as http:
            barrier.wait()
            r = http.post("/orders", json={"petId": pet_id})
        with lock:
            answers.append((r.status_code, r.json().get("detail", "")))

    threads = [threading.Thread(target=buyer, args=(pet_id,)) for pet_id in pets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(status for status, _ in answers) == [201] * 3 + [409] * 5
    assert all(detail.startswith("At most 3 unpaid") for status, detail in answers if status == 409)
    statuses = [api.request("GET", f"/pets/{p}").json()["status"] for p in pets]
    assert sorted(statuses) == ["AVAILABLE"] * 5 + ["PENDING"] * 3
