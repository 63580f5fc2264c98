"""The Admin API module (/v1/admin, spec/admin.yaml) through the real Connexion app: admins only,
tenancy, the dashboard, user management (status ends tokens at once) and order management
(force cancel is Cancel Order as staff)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import Engine, event, update

from app import ADMIN_SPEC_PATH
from models import Order, Payment, User, WebhookEvent
from models.base import utcnow
from models.database import Database
from services.admin.users import StatusChange
from services.shared.errors import Conflict
from services.shared.principal import ROLE_SCOPES, Principal
from tests.api.test_orders import Shop, _rows
from tests.conftest import PASSWORD, Api, run_db

ADMIN_SPEC = yaml.safe_load(ADMIN_SPEC_PATH.read_text())
VERBS = ("get", "put", "post", "delete", "patch")
EXAMPLE_ID = "019b4138-e0af-70b9-8f0c-6ea97d495dfa"
BODIES = {"patch": {"status": "ACTIVE", "reason": "x"}, "post": {"reason": "x"}}
OPERATIONS = [
    (method, path.replace("{id}", EXAMPLE_ID), op["operationId"])
    for path, item in ADMIN_SPEC["paths"].items()
    for method, op in item.items()
    if method in VERBS
]


def subject(token: str) -> str:
    """The account id a token was issued to (its ``sub`` claim)."""
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return str(claims["sub"])


def admin(api: Api, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
    return api.request(method.upper(), "/admin" + path, token, **kw)


@pytest.fixture
def shop(api: Api) -> Shop:
    return Shop(api)


# --- admins only: every operation of the module, read from its spec ---


def test_the_module_has_every_operation_of_the_seed() -> None:
    # guards the parametrisation below: a misread spec would make it vacuous
    ids = {op_id for _, _, op_id in OPERATIONS}
    assert {"getDashboardStats", "listUsers", "forceCancelOrder", "getAuditLogDetails"} <= ids
    assert len(OPERATIONS) == 8


@pytest.mark.parametrize(("method", "path", "op_id"), OPERATIONS, ids=[o[2] for o in OPERATIONS])
def test_every_operation_is_401_without_a_token_and_403_for_a_user(
    api: Api, method: str, path: str, op_id: str
) -> None:
    body = BODIES.get(method)
    anonymous = admin(api, method, path, json=body)
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    _, token = api.user_token()
    user = admin(api, method, path, token, json=body)
    assert user.status_code == 403, user.text
    # and an invalid token is 401, never treated as no token
    assert admin(api, method, path, "not-a-token", json=body).status_code == 401


def test_services_require_the_admin_scope_themselves(api: Api, app: Any) -> None:
    """Not only the spec: a caller without the admin scope is refused by the service."""
    from services.shared.errors import AuthenticationFailed, Forbidden

    user = Principal(uuid.uuid4(), "user", ROLE_SCOPES["user"], api.tenant or "")
    service = app.container.admin

    async def calls() -> list[type[Exception]]:
        refused: list[type[Exception]] = []
        for call in (
            lambda p: service.users.get(p, uuid.uuid4()),
            lambda p: service.orders.force_cancel(p, uuid.uuid4(), None),
            lambda p: service.dashboard(p, None),
        ):
            for who in (user, Principal(None, "anonymous", frozenset(), api.tenant or "")):
                try:
                    await call(who)
                except (Forbidden, AuthenticationFailed) as exc:
                    refused.append(type(exc))
        return refused

    assert asyncio.run(calls()) == [Forbidden, AuthenticationFailed] * 3


# --- tenancy ---


def test_an_admin_sees_nothing_of_another_tenant(shop: Shop, client: Any, settings: Any) -> None:
    other = Shop(Api(client, settings, str(uuid.uuid4())))
    order = other.placed()
    token = shop.admin
    users = admin(shop.api, "get", "/users?limit=100", token).json()["data"]
    assert other.user["id"] not in {u["id"] for u in users}
    assert {u["tenantId"] for u in users} == {shop.api.tenant}
    assert admin(shop.api, "get", f"/users/{other.user['id']}", token).status_code == 404
    body = {"status": "SUSPENDED", "reason": "no"}
    assert (
        admin(shop.api, "patch", f"/users/{other.user['id']}/status", token, json=body).status_code
        == 404
    )
    assert admin(shop.api, "get", "/orders", token).json()["data"] == []
    cancel = admin(shop.api, "post", f"/orders/{order['id']}/cancel", token, json={"reason": "x"})
    assert cancel.status_code == 404
    assert other.get(order["id"]).json()["status"] == "PLACED"
    stats = admin(shop.api, "get", "/dashboard", token).json()
    assert stats["orders"]["total"] == 0
    # naming the other tenant with this tenant's token is 403, as everywhere
    r = shop.api.client.get(
        "/v1/admin/users",
        headers={"Authorization": f"Bearer {token}", "X-Tenant-ID": other.api.tenant or ""},
    )
    assert r.status_code == 403


# --- dashboard ---


@contextmanager
def statements() -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)


def test_the_dashboard_counts_and_sums_in_the_database(shop: Shop) -> None:
    shop.pet(species="CAT")
    shop.pet(species="CAT", status="NOT_AVAILABLE")
    paid = shop.placed(price="100.50", currency="EUR")
    assert shop.pay(paid).status_code == 200
    paid_usd = shop.placed(price="20.25")
    assert shop.pay(paid_usd).status_code == 200
    shop.placed()  # PLACED, unpaid
    voided = shop.placed(price="999.00")
    assert shop.pay(voided).status_code == 200
    assert shop.api.request("DELETE", f"/orders/{voided['id']}", shop.token).status_code == 204

    with statements() as seen:
        r = admin(shop.api, "get", "/dashboard", shop.admin)
    assert r.status_code == 200, r.text
    stats = r.json()
    assert stats["pets"]["byStatus"] == {
        "AVAILABLE": 2,  # a cat and the cancelled order's dog
        "PENDING": 3,  # held by the three open orders
        "ADOPTED": 0,
        "NOT_AVAILABLE": 1,
    }
    assert stats["pets"]["total"] == 6
    assert stats["pets"]["bySpecies"]["CAT"] == 2
    assert stats["pets"]["bySpecies"]["DOG"] == 4
    assert stats["orders"]["byStatus"] == {
        "PLACED": 1,
        "APPROVED": 2,
        "SHIPPED": 0,
        "DELIVERED": 0,
        "CANCELLED": 1,
    }
    assert stats["orders"]["total"] == 4
    # the voided payment is no revenue; sums per currency, decimal strings
    assert stats["revenue"] == [
        {"currency": "EUR", "amount": "100.50"},
        {"currency": "USD", "amount": "20.25"},
    ]
    assert stats["newUsers"] == 2  # the shop's admin and customer
    # aggregation only: every statement the request ran on the data is a COUNT or SUM
    flat = [" ".join(s.split()) for s in seen]
    data = [
        s for s in flat if any(f" FROM {t} " in s + " " for t in ("pets", "orders", "payments"))
    ]
    assert len(data) == 4, flat  # pets twice (status, species), orders, payments
    assert all("count(" in s.lower() or "sum(" in s.lower() for s in data), data


def test_the_dashboards_period_defaults_to_30_days_and_filters(shop: Shop) -> None:
    order = shop.placed()
    old = utcnow().replace(microsecond=0).replace(year=utcnow().year - 1)

    async def age(db: Database) -> None:
        stmt = update(Order).where(Order.id == uuid.UUID(order["id"])).values(created_at=old)
        await db.run(shop.api.tenant or "", lambda s: s.execute(stmt), write=True)

    run_db(shop.api.settings, age)
    stats = admin(shop.api, "get", "/dashboard", shop.admin).json()
    assert stats["orders"]["total"] == 0
    start = stats["period"]["from"]
    assert stats["period"]["to"] > start
    since = old.strftime("%Y-%m-%dT%H:%M:%SZ")
    wide = admin(shop.api, "get", f"/dashboard?from={since}", shop.admin).json()
    assert wide["orders"]["total"] == 1
    assert wide["period"]["from"] == since
    backwards = admin(
        shop.api, "get", "/dashboard?from=2025-12-02T00:00:00Z&to=2025-12-01T00:00:00Z", shop.admin
    )
    assert backwards.status_code == 422
    assert backwards.json()["errors"][0]["field"] == "from"


# --- users ---


def test_list_users_searches_filters_sorts_and_pages(api: Api) -> None:
    token = api.admin_token()
    api.register("AliceSmith", email="alice@Shelter.example")
    bob = api.register("bob_b", email="bob@example.com")
    api.register("carol", email="carol.smith@example.com")

    def names(query: str) -> list[str]:
        r = admin(api, "get", f"/users?{query}", token)
        assert r.status_code == 200, r.text
        return [u["username"] for u in r.json()["data"]]

    assert sorted(names("q=SMITH")) == ["AliceSmith", "carol"]  # username or email, any case
    assert names("q=shelter.EXAMPLE") == ["AliceSmith"]
    assert names("role=admin") != []
    assert "bob_b" not in names("role=admin")
    assert names("sort=username")[:3] == ["AliceSmith", "bob_b", "carol"]
    assert names("sort=-username") == names("sort=username")[::-1]
    page = admin(api, "get", "/users?sort=username&limit=2&page=2", token).json()
    assert page["pagination"] == {"page": 2, "limit": 2, "totalItems": 4, "totalPages": 2}
    assert [u["username"] for u in page["data"]] == ["carol", names("sort=username")[3]]
    assert "q=" not in page["links"]["self"]
    assert "sort=username" in page["links"]["self"]
    body = {"status": "SUSPENDED", "reason": "test"}
    admin(api, "patch", f"/users/{bob['id']}/status", token, json=body)
    assert names("status=SUSPENDED") == ["bob_b"]
    assert admin(api, "get", "/users?status=BANNED", token).status_code == 400


def test_user_details_count_orders_and_remember_the_last_login(shop: Shop) -> None:
    user_id = shop.user["id"]
    details = admin(shop.api, "get", f"/users/{user_id}", shop.admin).json()
    first_login = details["lastLoginAt"]
    assert first_login is not None  # Shop logged the user in
    assert details["orderCount"] == 0
    assert details["status"] == "ACTIVE"
    assert details["statusReason"] is None
    shop.placed()
    shop.placed()
    details = admin(shop.api, "get", f"/users/{user_id}", shop.admin).json()
    assert details["orderCount"] == 2
    assert details["links"]["orders"].endswith(f"/v1/admin/orders?userId={user_id}")
    fresh = shop.api.register()
    assert admin(shop.api, "get", f"/users/{fresh['id']}", shop.admin).json()["lastLoginAt"] is None


def test_a_suspended_user_is_locked_out_at_once_and_reactivation_lets_them_back(
    shop: Shop,
) -> None:
    user_id, token = shop.user["id"], shop.token
    me = f"/users/{user_id}"
    assert shop.api.request("GET", me, token).status_code == 200  # the standing is cached now
    body = {"status": "SUSPENDED", "reason": "Repeated no-shows."}
    r = admin(shop.api, "patch", f"/users/{user_id}/status", shop.admin, json=body)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "SUSPENDED"
    assert r.json()["statusReason"] == "Repeated no-shows."
    assert r.json()["statusChangedAt"] is not None
    # the very next request with the token is refused, though the standing was cached
    assert shop.api.request("GET", me, token).status_code == 401
    login = shop.api.request(
        "POST", "/auth/tokens", json={"username": shop.user["username"], "password": PASSWORD}
    )
    assert login.status_code == 403
    assert "SUSPENDED" in login.json()["detail"]
    wrong = shop.api.request(
        "POST", "/auth/tokens", json={"username": shop.user["username"], "password": "wrong-one"}
    )
    assert wrong.status_code == 401  # a guesser learns nothing
    body = {"status": "ACTIVE", "reason": "Talked it through."}
    assert (
        admin(shop.api, "patch", f"/users/{user_id}/status", shop.admin, json=body).status_code
        == 200
    )
    again = shop.api.login(shop.user["username"])
    assert shop.api.request("GET", me, again).status_code == 200
    assert shop.api.request("GET", me, token).status_code == 401  # ended for good


def test_deactivated_is_refused_like_suspended(shop: Shop) -> None:
    body = {"status": "DEACTIVATED", "reason": "Closed on request."}
    admin(shop.api, "patch", f"/users/{shop.user['id']}/status", shop.admin, json=body)
    assert shop.api.request("GET", "/webhooks", shop.token).status_code == 401
    login = shop.api.request(
        "POST", "/auth/tokens", json={"username": shop.user["username"], "password": PASSWORD}
    )
    assert login.status_code == 403


def test_an_admin_cannot_suspend_themself(api: Api) -> None:
    token = api.admin_token()
    me = {"id": subject(token)}
    for status in ("SUSPENDED", "DEACTIVATED"):
        body = {"status": status, "reason": "oops"}
        r = admin(api, "patch", f"/users/{me['id']}/status", token, json=body)
        assert r.status_code == 409, r.text
        assert "own account" in r.json()["detail"]
    assert api.request("GET", f"/users/{me['id']}", token).status_code == 200


def test_another_admin_can_be_suspended_but_not_the_last_active_one(api: Api, app: Any) -> None:
    token = api.admin_token()
    me = {"id": subject(token)}
    colleague = api.register()

    async def promote(db: Database) -> None:
        stmt = update(User).where(User.id == uuid.UUID(colleague["id"])).values(role="admin")
        await db.run(api.tenant or "", lambda s: s.execute(stmt), write=True)

    run_db(api.settings, promote)
    body = {"status": "SUSPENDED", "reason": "On leave."}
    r = admin(api, "patch", f"/users/{colleague['id']}/status", token, json=body)
    assert r.status_code == 200, r.text
    # Now ``me`` is the tenant's last ACTIVE admin. Only a caller that is not (a race: two
    # admins suspending each other at once) could target it; the service refuses.
    racing = Principal(uuid.UUID(colleague["id"]), "admin", ROLE_SCOPES["admin"], api.tenant or "")
    with pytest.raises(Conflict, match="last ACTIVE admin"):
        asyncio.run(
            app.container.admin.users.set_status(
                racing, uuid.UUID(me["id"]), StatusChange("SUSPENDED", "race")
            )
        )
    assert api.request("GET", f"/users/{me['id']}", token).status_code == 200


def test_a_reason_is_required(shop: Shop) -> None:
    path = f"/users/{shop.user['id']}/status"
    bodies = [
        {"status": "SUSPENDED"},
        {"status": "SUSPENDED", "reason": ""},
        {"status": "SUSPENDED", "reason": "x" * 501},
        {"status": "SUSPENDED", "reason": "   "},
        {"status": "BANNED", "reason": "x"},
    ]
    for body in bodies:
        r = admin(shop.api, "patch", path, shop.admin, json=body)
        assert r.status_code == 400, (body, r.text)
    assert shop.api.request("GET", f"/users/{shop.user['id']}", shop.token).status_code == 200


# --- orders ---


def _status_events(api: Api, order_id: str) -> list[dict[str, Any]]:
    events = sorted(_rows(api, WebhookEvent), key=lambda e: e.created_at)
    return [
        e.payload
        for e in events
        if e.event_type == "order.statusChanged" and e.payload["order"]["id"] == order_id
    ]


def test_list_all_orders_filters_and_pages(shop: Shop) -> None:
    other_user, other_token = shop.api.user_token()
    mine = shop.placed()
    theirs = shop.placed(other_token)
    guest = shop.order(shop.pet()["id"]).json()
    assert shop.pay(mine).status_code == 200

    def ids(query: str = "") -> list[str]:
        r = admin(shop.api, "get", f"/orders?{query}", shop.admin)
        assert r.status_code == 200, r.text
        return [o["id"] for o in r.json()["data"]]

    assert ids() == [guest["id"], theirs["id"], mine["id"]]  # newest first, guests' too
    assert ids(f"userId={other_user['id']}") == [theirs["id"]]
    assert ids(f"petId={mine['petId']}") == [mine["id"]]
    assert ids("status=APPROVED") == [mine["id"]]
    assert ids("from=2999-01-01T00:00:00Z") == []
    assert ids("to=2000-01-01T00:00:00Z") == []
    page = admin(shop.api, "get", "/orders?limit=2&page=2", shop.admin).json()
    assert [o["id"] for o in page["data"]] == [mine["id"]]
    assert page["data"][0]["receipt"]["receiptId"]
    assert page["pagination"]["totalItems"] == 3


def test_force_cancel_of_a_placed_order_releases_the_pet(shop: Shop) -> None:
    order = shop.placed()
    reason = "Pet needs a vet check first."
    r = admin(
        shop.api, "post", f"/orders/{order['id']}/cancel", shop.admin, json={"reason": reason}
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "CANCELLED"
    assert shop.pet_status(order["petId"]) == "AVAILABLE"
    admin_id = subject(shop.admin)
    (event_payload,) = _status_events(shop.api, order["id"])
    assert event_payload["changedBy"] == "staff"
    assert event_payload["actorId"] == admin_id
    assert event_payload["reason"] == reason
    again = admin(
        shop.api, "post", f"/orders/{order['id']}/cancel", shop.admin, json={"reason": "x"}
    )
    assert again.status_code == 409


def test_force_cancel_of_a_paid_order_refunds_through_the_processor(shop: Shop) -> None:
    order = shop.placed()
    assert shop.pay(order).status_code == 200
    r = admin(shop.api, "post", f"/orders/{order['id']}/cancel", shop.admin, json={"reason": "x"})
    assert r.status_code == 200, r.text
    (payment,) = _rows(shop.api, Payment, order_id=uuid.UUID(order["id"]))
    assert payment.status == "CANCELLED"  # voided ...
    assert payment.refund_reference
    assert payment.refund_reference.startswith("tr_")
    assert shop.pet_status(order["petId"]) == "AVAILABLE"
    changes = [
        (e["previousStatus"], e["newStatus"], e["changedBy"])
        for e in _status_events(shop.api, order["id"])
    ]
    assert changes == [("PLACED", "APPROVED", "system"), ("APPROVED", "CANCELLED", "staff")]
    # the dashboard no longer counts it as revenue
    assert admin(shop.api, "get", "/dashboard", shop.admin).json()["revenue"] == []


def test_a_customers_own_cancel_behaves_the_same_with_the_customer_as_actor(shop: Shop) -> None:
    order = shop.placed()
    assert shop.pay(order).status_code == 200
    assert shop.api.request("DELETE", f"/orders/{order['id']}", shop.token).status_code == 204
    (payment,) = _rows(shop.api, Payment, order_id=uuid.UUID(order["id"]))
    assert payment.status == "CANCELLED"
    assert payment.refund_reference
    assert shop.pet_status(order["petId"]) == "AVAILABLE"
    last = _status_events(shop.api, order["id"])[-1]
    assert (last["changedBy"], last["actorId"]) == ("customer", shop.user["id"])
    assert "reason" not in last


def test_staff_force_cancel_shipped_but_not_delivered_orders(shop: Shop) -> None:
    shipped, delivered = shop.placed(), shop.placed()
    for order, steps in ((shipped, ["SHIPPED"]), (delivered, ["SHIPPED", "DELIVERED"])):
        assert shop.pay(order).status_code == 200
        for status in steps:
            r = shop.api.request(
                "PATCH", f"/orders/{order['id']}", shop.admin, json={"status": status}
            )
            assert r.status_code == 200, r.text
    r = admin(shop.api, "post", f"/orders/{shipped['id']}/cancel", shop.admin, json={"reason": "x"})
    assert r.status_code == 200
    assert r.json()["status"] == "CANCELLED"
    r = admin(
        shop.api, "post", f"/orders/{delivered['id']}/cancel", shop.admin, json={"reason": "x"}
    )
    assert r.status_code == 409
    assert shop.get(delivered["id"]).json()["status"] == "DELIVERED"
    missing = admin(
        shop.api, "post", f"/orders/{uuid.uuid4()}/cancel", shop.admin, json={"reason": "x"}
    )
    assert missing.status_code == 404


# --- the REST edge under /v1/admin: as under /v1 ---


def test_405_406_413_and_docs_under_the_admin_prefix(api: Api) -> None:
    token = api.admin_token()
    r = admin(api, "delete", "/users", token)
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET"
    r = admin(api, "put", f"/orders/{EXAMPLE_ID}/cancel", token)
    assert (r.status_code, r.headers["Allow"]) == (405, "POST")
    r = admin(api, "get", "/dashboard", token, headers={"Accept": "text/html"})
    assert r.status_code == 406
    big = b"{" + b" " * (1024 * 1024 + 10) + b"}"
    r = admin(
        api,
        "post",
        f"/orders/{EXAMPLE_ID}/cancel",
        token,
        content=big,
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert r.headers["X-Request-ID"]
    assert r.headers["RateLimit-Limit"]
    spec = api.client.get("/v1/admin/openapi.json").json()
    assert spec["info"]["title"] == "Modern Pet Store Admin API"
    assert "/dashboard" in spec["paths"]
    assert api.client.get("/v1/admin/openapi.yaml").text.startswith("openapi: 3.0.3")
    assert api.client.get("/v1/admin/ui/").status_code == 200
    assert "/v1/admin/openapi.json" in api.client.get("/v1/admin/redoc").text
    # the Store API's documents are still its own
    assert api.client.get("/v1/openapi.json").json()["info"]["title"] == "Modern Pet Store API"


def test_every_worker_refuses_a_suspended_accounts_token_within_the_role_cache(
    api: Api, live_server: str
) -> None:
    """Two worker processes: the one that suspends refuses at once (above); every other one
    within PETSTORE_ROLE_CACHE_SECONDS (5 s), as spec/admin.yaml and the README say."""
    admin_token = api.admin_token()
    user, token = api.user_token()
    tenant = {"X-Tenant-ID": api.tenant or ""}
    with httpx.Client(base_url=live_server, timeout=30) as http:
        me = {**tenant, "Authorization": f"Bearer {token}"}
        for _ in range(10):  # both workers have the account's standing cached now
            assert http.get(f"/users/{user['id']}", headers=me).status_code == 200
        r = http.patch(
            f"/admin/users/{user['id']}/status",
            headers={**tenant, "Authorization": f"Bearer {admin_token}"},
            json={"status": "SUSPENDED", "reason": "Across workers."},
        )
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 5 + 2  # the cache's lifetime and a margin
        while True:
            codes = {http.get(f"/users/{user['id']}", headers=me).status_code for _ in range(10)}
            if codes == {401}:
                break
            assert time.monotonic() < deadline, codes
            time.sleep(0.25)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("to=0465-04-23T04:33:38Z", "to"),  # found by the contract run: a 500 before
        ("from=1969-12-01T00:00:00Z&to=1970-01-02T00:00:00Z", "from"),
        ("to=9999-12-31T23:00:00-05:00", "to"),
        ("to=0001-01-01T00:30:00%2B01:00", "to"),
    ],
)
def test_the_dashboard_refuses_a_period_outside_its_years(api: Api, query: str, field: str) -> None:
    r = admin(api, "get", f"/dashboard?{query}", api.admin_token())
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == [field]


def test_the_dashboard_answers_its_period_in_utc(api: Api) -> None:
    query = "from=2026-01-01T02:00:00%2B02:00&to=2026-01-31T00:00:00Z"
    r = admin(api, "get", f"/dashboard?{query}", api.admin_token())
    assert r.status_code == 200, r.text
    assert r.json()["period"] == {"from": "2026-01-01T00:00:00Z", "to": "2026-01-31T00:00:00Z"}
