"""The Admin API's side of the audit log, through the real app: its own actions are audited in
their transaction (a status change, a force cancel; a refused one writes nothing, a customer's
cancel is not a force cancel), a startup promotion is audited by the system, and List Audit Logs
/ Get Audit Log Details read the tenant's chain with their filters."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from models.database import Database
from services.accounts.users import ensure_admin
from services.admin import audit
from tests.api.test_admin import admin, subject
from tests.api.test_audit_log import one, rows
from tests.api.test_orders import Shop
from tests.conftest import Api, run_db


@pytest.fixture
def shop(api: Api) -> Shop:
    return Shop(api)


def _chain_holds(api: Api) -> None:
    async def go(db: Database) -> Any:
        return await audit.verify(db)

    assert run_db(api.settings, go) is None


def test_a_status_change_is_audited_and_read_back_through_the_api(shop: Shop) -> None:
    user_id = shop.user["id"]
    body = {"status": "SUSPENDED", "reason": "Repeated no-shows."}
    r = admin(shop.api, "patch", f"/users/{user_id}/status", shop.admin, json=body)
    assert r.status_code == 200, r.text
    row = one(shop.api, action="USER_STATUS_CHANGED")
    admin_id = subject(shop.admin)
    assert (str(row.actor_id), row.actor_role) == (admin_id, "admin")
    assert (row.entity_type, row.entity_id) == ("USER", user_id)
    assert row.before == {"status": "ACTIVE", "reason": None}
    assert row.after == {"status": "SUSPENDED", "reason": "Repeated no-shows."}

    listed = admin(shop.api, "get", "/audit-logs?action=USER_STATUS_CHANGED", shop.admin)
    assert listed.status_code == 200, listed.text
    (entry,) = listed.json()["data"]
    assert entry["id"] == str(row.id)
    assert (entry["userId"], entry["entityType"], entry["entityId"]) == (admin_id, "USER", user_id)
    assert (entry["seq"], entry["hash"], entry["prevHash"]) == (row.seq, row.hash, row.prev_hash)
    detail = admin(shop.api, "get", f"/audit-logs/{row.id}", shop.admin)
    assert detail.status_code == 200
    assert detail.json() == entry
    _chain_holds(shop.api)


def test_a_refused_status_change_writes_no_row(shop: Shop) -> None:
    admin_id = subject(shop.admin)
    body = {"status": "SUSPENDED", "reason": "x"}
    r = admin(shop.api, "patch", f"/users/{admin_id}/status", shop.admin, json=body)
    assert r.status_code == 409
    assert rows(shop.api, action="USER_STATUS_CHANGED") == []


def test_force_cancel_is_audited_once_and_a_customers_cancel_is_not(shop: Shop) -> None:
    forced, own = shop.placed(), shop.placed()
    reason = "The adopter withdrew by phone."
    cancel = f"/orders/{forced['id']}/cancel"
    assert admin(shop.api, "post", cancel, shop.admin, json={"reason": reason}).status_code == 200
    assert admin(shop.api, "post", cancel, shop.admin, json={"reason": "x"}).status_code == 409
    assert shop.api.request("DELETE", f"/orders/{own['id']}", shop.token).status_code == 204
    row = one(shop.api, action="ORDER_FORCE_CANCELLED")
    assert (row.entity_type, row.entity_id) == ("ORDER", forced["id"])
    assert str(row.actor_id) == subject(shop.admin)
    assert row.before == {"status": "PLACED"}
    assert row.after == {"status": "CANCELLED", "reason": reason}
    by_entity = admin(
        shop.api, "get", f"/audit-logs?entityType=ORDER&entityId={forced['id']}", shop.admin
    )
    assert [e["id"] for e in by_entity.json()["data"]] == [str(row.id)]
    _chain_holds(shop.api)


def test_filters_narrow_the_list_and_pages_are_newest_first(shop: Shop) -> None:
    admin_id = subject(shop.admin)
    for status in ("SUSPENDED", "ACTIVE", "DEACTIVATED"):
        body = {"status": status, "reason": f"to {status}"}
        r = admin(shop.api, "patch", f"/users/{shop.user['id']}/status", shop.admin, json=body)
        assert r.status_code == 200, r.text
    mine = admin(shop.api, "get", f"/audit-logs?userId={admin_id}&limit=2", shop.admin).json()
    assert [e["after"]["status"] for e in mine["data"]] == ["DEACTIVATED", "ACTIVE"]
    assert mine["pagination"]["totalItems"] >= 3
    assert all(e["userId"] == admin_id for e in mine["data"])
    later = admin(shop.api, "get", "/audit-logs?from=2999-01-01T00:00:00Z", shop.admin).json()
    assert later["data"] == []
    nobody = admin(shop.api, "get", f"/audit-logs?userId={uuid.uuid4()}", shop.admin).json()
    assert nobody["data"] == []
    bad = admin(shop.api, "get", "/audit-logs?action=NOT_AN_ACTION", shop.admin)
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "action"
    missing = admin(shop.api, "get", f"/audit-logs/{uuid.uuid4()}", shop.admin)
    assert missing.status_code == 404


def test_a_startup_promotion_is_audited_by_the_system(api: Api) -> None:
    user, _ = api.user_token()

    async def promote(db: Database) -> None:
        await ensure_admin(
            db, api.tenant or "", user["username"], "a-new-admin-pass-123", promote_existing=True
        )

    run_db(api.settings, promote)
    row = one(api, action="USER_ROLE_CHANGED")
    assert (row.actor_id, row.actor_role) == (None, "system")
    assert (row.entity_type, row.entity_id) == ("USER", user["id"])
    assert row.before == {"role": "user"}
    assert row.after == {"role": "admin", "reason": "PETSTORE_ADMIN_PROMOTE_EXISTING"}
    _chain_holds(api)
