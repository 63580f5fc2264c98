"""The audit log through the Connexion app: each security event writes exactly one row (right
action, actor, entity, client address and user agent, no secrets) in the transaction of its
change; a refused change leaves no row; the hash chain detects a row altered or removed in the
database, through ``verify`` and through ``manage.py audit-verify``."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import jwt
import pytest
from sqlalchemy import Table, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from models import AuditHead, AuditLog, User
from models.audit_log import GENESIS_HASH
from models.database import Database
from services.accounts import users
from services.admin import audit
from services.shared.errors import Conflict, NotFound
from services.shared.pagination import PageRequest
from services.shared.principal import anonymous
from settings import ROOT, Settings
from tests.api.test_orders import CARD, Shop
from tests.conftest import PASSWORD, Api, run_db
from tests.webhook_receiver import receiver

UA = "audit-test/1.0 (shelter kiosk)"


def rows(api: Api, **where: Any) -> list[AuditLog]:
    """The tenant's audit rows (in chain order) matching ``where``."""

    async def go(db: Database) -> list[AuditLog]:
        stmt = select(AuditLog).filter_by(**where).order_by(AuditLog.seq)
        return await db.run(api.tenant or "", lambda s: list(s.scalars(stmt)))

    result: list[AuditLog] = run_db(api.settings, go)
    return result


def one(api: Api, **where: Any) -> AuditLog:
    found = rows(api, **where)
    assert len(found) == 1, [(r.action, r.entity_id) for r in found]
    return found[0]


def serialized(row: AuditLog) -> str:
    return json.dumps([row.entity_id, row.before, row.after, row.user_agent])


def register(api: Api, username: str | None = None) -> Any:
    username = username or f"u{uuid.uuid4().hex[:10]}"
    body = {
        "username": username,
        "email": f"{username}@example.com",
        "password": PASSWORD,
        "firstName": "Test",
        "lastName": "User",
    }
    return api.request("POST", "/users", json=body, headers={"User-Agent": UA})


def login(api: Api, username: str, password: str = PASSWORD) -> Any:
    body = {"username": username, "password": password}
    return api.request("POST", "/auth/tokens", json=body, headers={"User-Agent": UA})


def assert_origin(row: AuditLog) -> None:
    assert row.client_address == "testclient"  # Starlette's test client's peer
    assert row.user_agent == UA


class TestAccounts:
    def test_registration_writes_user_registered_and_token_issued(self, api: Api) -> None:
        r = register(api)
        assert r.status_code == 201, r.text
        user_id, token = r.json()["id"], r.json()["token"]["token"]
        created = one(api, action="USER_REGISTERED")
        assert (created.entity_type, created.entity_id) == ("USER", user_id)
        assert (str(created.actor_id), created.actor_role) == (user_id, "user")
        assert created.after == {"username": r.json()["username"], "role": "user"}
        assert_origin(created)
        issued = one(api, action="TOKEN_ISSUED")
        jti = jwt.decode(token, options={"verify_signature": False})["jti"]
        assert (issued.entity_type, issued.entity_id) == ("TOKEN", jti)
        assert str(issued.actor_id) == user_id
        assert issued.after is not None
        assert issued.after["userId"] == user_id
        assert_origin(issued)
        assert token not in serialized(issued)
        assert PASSWORD not in serialized(created)
        assert (created.seq, issued.seq) == (1, 2)  # one transaction, in order

    def test_a_conflicting_registration_leaves_no_row(self, api: Api) -> None:
        name = f"u{uuid.uuid4().hex[:10]}"
        assert register(api, name).status_code == 201
        before = len(rows(api))
        assert register(api, name).status_code == 409
        assert len(rows(api)) == before

    def test_login_writes_token_issued_by_the_account(self, api: Api) -> None:
        user = api.register()
        r = login(api, user["username"])
        assert r.status_code == 201
        jti = jwt.decode(r.json()["token"], options={"verify_signature": False})["jti"]
        row = one(api, action="TOKEN_ISSUED", entity_id=jti)
        assert (str(row.actor_id), row.actor_role) == (user["id"], "user")
        assert_origin(row)

    def test_a_failed_login_names_the_account_never_the_password(self, api: Api) -> None:
        user = api.register()
        wrong = "not-the-password-9"
        assert login(api, user["username"], wrong).status_code == 401
        row = one(api, action="LOGIN_FAILED")
        assert (row.entity_type, row.entity_id) == ("USER", user["id"])
        assert (row.actor_id, row.actor_role) == (None, "anonymous")
        assert row.after == {"reason": "wrong_password", "username": user["username"]}
        assert_origin(row)
        assert wrong not in serialized(row)
        assert not rows(api, action="TOKEN_ISSUED", actor_id=uuid.UUID(user["id"]))[1:]

    def test_a_login_for_no_account_never_stores_the_attempted_name(self, api: Api) -> None:
        typed = "correct-horse-42-typed-as-a-name"
        assert login(api, typed, "whatever-else-1").status_code == 401
        row = one(api, action="LOGIN_FAILED")
        assert (row.entity_type, row.entity_id) == ("USER", "unknown")
        assert row.after == {"reason": "unknown_user"}
        assert typed not in serialized(row)

    def test_password_change_is_recorded_and_a_wrong_one_is_not(self, api: Api) -> None:
        user, token = api.user_token()
        path = f"/users/{user['id']}/password"
        wrong = {"currentPassword": "not-it-at-all", "newPassword": "another-horse-43"}
        assert api.request("PUT", path, token, json=wrong).status_code == 422
        assert rows(api, action="PASSWORD_CHANGED") == []
        change = {"currentPassword": PASSWORD, "newPassword": "another-horse-43"}
        r = api.request("PUT", path, token, json=change, headers={"User-Agent": UA})
        assert r.status_code == 204, r.text
        row = one(api, action="PASSWORD_CHANGED")
        assert (row.entity_type, row.entity_id, str(row.actor_id)) == (
            "USER",
            user["id"],
            user["id"],
        )
        assert row.before == {"tokenVersion": 0}
        assert row.after == {"tokenVersion": 1}
        assert_origin(row)
        assert "another-horse-43" not in serialized(row)


@pytest.fixture
def shop(api: Api) -> Shop:
    return Shop(api)


class TestPaymentsAndWebhooks:
    def test_a_captured_payment_is_recorded_and_a_declined_one_is_not(self, shop: Shop) -> None:
        order = shop.placed()
        declined = shop.pay(order, source={**CARD, "number": "4000000000000002"})
        assert declined.status_code == 402
        assert rows(shop.api, action="PAYMENT_CAPTURED") == []
        r = shop.pay(order, headers={"User-Agent": UA})
        assert r.status_code in (200, 201), r.text
        row = one(shop.api, action="PAYMENT_CAPTURED")
        assert (row.entity_type, row.entity_id) == ("PAYMENT", r.json()["id"])
        assert str(row.actor_id) == shop.user["id"]
        assert row.before == {"status": "PROCESSING", "orderStatus": "PLACED"}
        assert row.after is not None
        assert (row.after["status"], row.after["orderStatus"]) == ("SUCCEEDED", "APPROVED")
        assert row.after["orderId"] == order["id"]
        assert_origin(row)
        assert str(CARD["number"]) not in serialized(row)
        assert f'"{CARD["cvc"]}"' not in json.dumps(row.after)

    def test_cancelling_a_paid_order_records_the_refund(self, shop: Shop) -> None:
        order = shop.placed()
        payment = shop.pay(order).json()
        r = shop.api.request(
            "DELETE", f"/orders/{order['id']}", shop.token, headers={"User-Agent": UA}
        )
        assert r.status_code == 204, r.text
        row = one(shop.api, action="PAYMENT_REFUNDED")
        assert (row.entity_type, row.entity_id) == ("PAYMENT", payment["id"])
        assert str(row.actor_id) == shop.user["id"]
        assert row.after is not None
        assert row.after["refunded"] is True
        assert row.after["refundReference"].startswith("tr_")
        assert_origin(row)

    def test_webhook_subscriptions_created_and_deleted(self, shop: Shop) -> None:
        with receiver() as hook:
            self._subscribe_and_delete(shop, hook.url)

    def _subscribe_and_delete(self, shop: Shop, url: str) -> None:
        body = {"url": f"{url}?key=s3cr3t", "events": ["payment.succeeded"]}
        r = shop.api.request("POST", "/webhooks", shop.token, json=body, headers={"User-Agent": UA})
        assert r.status_code == 201, r.text
        created = r.json()
        row = one(shop.api, action="WEBHOOK_SUBSCRIPTION_CREATED")
        assert (row.entity_type, row.entity_id) == ("WEBHOOK_SUBSCRIPTION", created["id"])
        assert str(row.actor_id) == shop.user["id"]
        assert row.after == {
            "ownerId": shop.user["id"],
            "url": url,  # no query: it may carry the receiver's key
            "events": ["payment.succeeded"],
            "active": True,
        }
        assert created["secret"] not in serialized(row)
        assert "s3cr3t" not in serialized(row)
        assert_origin(row)
        path = f"/webhooks/{created['id']}"
        assert shop.api.request("DELETE", path, shop.token).status_code == 204
        gone = one(shop.api, action="WEBHOOK_SUBSCRIPTION_DELETED")
        assert gone.entity_id == created["id"]
        assert gone.before == row.after
        assert shop.api.request("DELETE", path, shop.token).status_code == 404
        assert len(rows(shop.api, action="WEBHOOK_SUBSCRIPTION_DELETED")) == 1


class TestSameTransaction:
    def test_a_change_that_fails_after_recording_leaves_no_row(self, api: Api) -> None:
        """The row is written in the caller's transaction: when that rolls back, so does it."""
        tenant = api.tenant or ""

        def work(session: Session) -> None:
            audit.record(
                session,
                anonymous(tenant),
                audit.AuditAction.LOGIN_FAILED,
                audit.AuditEntity.USER,
                "x",
            )
            raise RuntimeError("the change failed")

        async def go(db: Database) -> None:
            with pytest.raises(RuntimeError):
                await db.run(tenant, work, write=True)

        run_db(api.settings, go)
        assert rows(api) == []
        assert (
            run_db(api.settings, lambda db: db.run(tenant, lambda s: s.get(AuditHead, tenant)))
            is None
        )

    def test_a_failing_audit_write_fails_the_change(self, api: Api) -> None:
        """The database refuses this tenant's audit rows: the registration fails with it."""
        tenant = api.tenant or ""
        with refused_audit_inserts(api.settings, tenant):
            data = users.NewUser("victor", "victor@example.com", "V", "W", password=PASSWORD)
            with pytest.raises((Conflict, DBAPIError)):
                run_db(api.settings, lambda db: users.register(db, tenant, data))
        found = run_db(
            api.settings,
            lambda db: db.run(
                tenant, lambda s: s.scalar(select(User).filter_by(username="victor"))
            ),
        )
        assert found is None
        assert rows(api) == []


@contextmanager
def refused_audit_inserts(settings: Settings, tenant: str) -> Iterator[None]:
    db = Database(settings.database_url)
    if db.is_sqlite:
        create = [
            f"CREATE TRIGGER refuse_{tenant[:8]} BEFORE INSERT ON audit_logs "
            f"WHEN NEW.tenant_id = '{tenant}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
        ]
        drop = [f"DROP TRIGGER refuse_{tenant[:8]}"]
    else:
        name = f"refuse_{tenant[:8]}"
        create = [
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.tenant_id = '{tenant}' THEN RAISE EXCEPTION 'refused'; END IF; "
            "RETURN NEW; END $$",
            f"CREATE TRIGGER {name} BEFORE INSERT ON audit_logs FOR EACH ROW "
            f"EXECUTE FUNCTION {name}()",
        ]
        drop = [f"DROP TRIGGER {name} ON audit_logs", f"DROP FUNCTION {name}()"]
    with db.engine.begin() as conn:
        for statement in create:
            conn.exec_driver_sql(statement)
    try:
        yield
    finally:
        with db.engine.begin() as conn:
            for statement in drop:
                conn.exec_driver_sql(statement)
        db.engine.dispose()


# --- Tamper evidence ---------------------------------------------------------------------


def tamper(settings: Settings, *statements: tuple[str, dict[str, Any]]) -> None:
    """Run SQL straight against the database, around the PostgreSQL append-only trigger (as an
    intruder with the owner's rights could)."""
    db = Database(settings.database_url)
    try:
        with db.engine.begin() as conn:
            if not db.is_sqlite:
                conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            for sql, params in statements:
                conn.execute(text(sql), params)
    finally:
        db.engine.dispose()


def verify(settings: Settings, tenant: str | None) -> audit.BrokenLink | None:
    result: audit.BrokenLink | None = run_db(settings, lambda db: audit.verify(db, tenant))
    return result


def manage_verify(
    settings: Settings, tenant: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "PETSTORE_VAR_DIR": str(settings.var_dir),
        "PETSTORE_JWT_SECRET": settings.jwt_secret,
    }
    args = [sys.executable, "manage.py", "audit-verify", *(["--tenant", tenant] if tenant else [])]
    return subprocess.run(  # noqa: S603 - our own manage.py
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def chain(api: Api) -> list[AuditLog]:
    """A tenant with a few events: registrations, logins, a failed login."""
    for _ in range(2):
        user = api.register()
        api.login(user["username"])
    login(api, user["username"], "wrong-password-1")
    found = rows(api)
    assert [r.seq for r in found] == list(range(1, len(found) + 1))
    assert len(found) == 7
    return found


class TestTamperEvidence:
    def test_an_untouched_chain_verifies(self, api: Api, chain: list[AuditLog]) -> None:
        assert verify(api.settings, api.tenant) is None
        assert chain[0].prev_hash == GENESIS_HASH
        assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(chain))
        done = manage_verify(api.settings, api.tenant)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.startswith("OK: 7 audit rows in 1 tenant chains verified")

    def test_every_chain_in_the_database_verifies(self, api: Api, chain: list[AuditLog]) -> None:
        done = manage_verify(api.settings)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.startswith("OK: ")

    @pytest.mark.parametrize(
        ("column", "value"),
        [("action", "PASSWORD_CHANGED"), ("after", '{"reason": "nothing happened"}')],
    )
    def test_an_altered_row_is_reported(
        self, api: Api, chain: list[AuditLog], column: str, value: str
    ) -> None:
        victim = chain[4]
        original = getattr(victim, column)
        if column == "after":
            original = json.dumps(original)
        sql = f"UPDATE audit_logs SET {column} = :value WHERE id = :id"  # noqa: S608
        tamper(api.settings, (sql, {"value": value, "id": _id(api, victim.id)}))
        try:
            broken = verify(api.settings, api.tenant)
            assert broken is not None
            assert (broken.tenant, broken.seq, broken.id) == (api.tenant, 5, victim.id)
            assert "altered" in broken.problem
            done = manage_verify(api.settings, api.tenant)
            assert done.returncode != 0
            assert f"seq 5 id {victim.id}" in done.stdout
            assert str(api.tenant) in done.stdout
        finally:
            tamper(api.settings, (sql, {"value": original, "id": _id(api, victim.id)}))
        assert verify(api.settings, api.tenant) is None

    def test_a_row_removed_from_the_middle_is_reported(
        self, api: Api, chain: list[AuditLog]
    ) -> None:
        victim = chain[2]
        tamper(api.settings, ("DELETE FROM audit_logs WHERE id = :id", {"id": _id(api, victim.id)}))
        try:
            broken = verify(api.settings, api.tenant)
            assert broken is not None
            assert (broken.seq, broken.id) == (3, None)
            assert "row 3 is missing" in broken.problem
            done = manage_verify(api.settings, api.tenant)
            assert done.returncode != 0
            assert "seq 3" in done.stdout
        finally:
            _reinsert(api, victim)
        assert verify(api.settings, api.tenant) is None

    def test_a_row_removed_from_the_end_is_reported(self, api: Api, chain: list[AuditLog]) -> None:
        victim = chain[-1]
        tamper(api.settings, ("DELETE FROM audit_logs WHERE id = :id", {"id": _id(api, victim.id)}))
        try:
            broken = verify(api.settings, api.tenant)
            assert broken is not None
            assert broken.seq == 7
            assert "rows at the end were removed" in broken.problem
        finally:
            _reinsert(api, victim)
        assert verify(api.settings, api.tenant) is None

    def test_a_rewritten_chain_does_not_match_its_head(
        self, api: Api, chain: list[AuditLog]
    ) -> None:
        """Rehashing an altered last row still leaves the head naming the original hash."""
        last = chain[-1]
        forged = "f" * 64
        sql = "UPDATE audit_logs SET hash = :hash WHERE id = :id"
        tamper(api.settings, (sql, {"hash": forged, "id": _id(api, last.id)}))
        try:
            assert verify(api.settings, api.tenant) is not None
        finally:
            tamper(api.settings, (sql, {"hash": last.hash, "id": _id(api, last.id)}))

    def test_postgresql_refuses_updates_and_deletes(self, api: Api, chain: list[AuditLog]) -> None:
        db = Database(api.settings.database_url)
        if db.is_sqlite:
            db.engine.dispose()
            pytest.skip("the append-only trigger is PostgreSQL's (SQLite relies on the chain)")
        try:
            for sql in ("UPDATE audit_logs SET action = 'X'", "DELETE FROM audit_logs"):
                with pytest.raises(Exception, match="append-only"), db.engine.begin() as conn:
                    conn.execute(text(sql + " WHERE id = :id"), {"id": chain[0].id})
        finally:
            db.engine.dispose()


def _id(api: Api, value: uuid.UUID) -> Any:
    """A UUID as the database stores it (SQLite: 32 hex digits; PostgreSQL: uuid)."""
    return value.hex if api.settings.database_url.startswith("sqlite") else value


def _reinsert(api: Api, row: AuditLog) -> None:
    table = cast(Table, AuditLog.__table__)
    values = {c.name: getattr(row, c.name) for c in table.columns}

    async def go(db: Database) -> None:
        await db.run_system(lambda s: s.execute(table.insert().values(values)), write=True)

    run_db(api.settings, go)


class TestQueries:
    def test_list_filters_and_pages_newest_first(self, api: Api, chain: list[AuditLog]) -> None:
        tenant = api.tenant or ""

        def page(query: audit.AuditQuery, paging: PageRequest | None = None) -> Any:
            return run_db(
                api.settings,
                lambda db: db.run(tenant, lambda s: audit.list_entries(s, query, paging)),
            )

        everything = page(audit.AuditQuery())
        assert everything.total == 7
        assert [r.seq for r in everything.items] == [7, 6, 5, 4, 3, 2, 1]
        second = page(audit.AuditQuery(), PageRequest(2, 3))
        assert [r.seq for r in second.items] == [4, 3, 2]
        assert second.total_pages == 3
        tokens = page(audit.AuditQuery(action="TOKEN_ISSUED"))
        assert tokens.total == 4
        assert {r.action for r in tokens.items} == {"TOKEN_ISSUED"}
        user = chain[0]
        assert user.actor_id is not None
        by_actor = page(audit.AuditQuery(actor_id=user.actor_id))
        assert {r.seq for r in by_actor.items} == {1, 2, 3}  # registered, token, login token
        about = page(audit.AuditQuery(entity_type="USER", entity_id=user.entity_id))
        assert {r.action for r in about.items} == {"USER_REGISTERED"}
        window = page(audit.AuditQuery(since=chain[3].occurred_at, until=chain[6].occurred_at))
        assert all(
            chain[3].occurred_at <= r.occurred_at < chain[6].occurred_at for r in window.items
        )
        assert page(audit.AuditQuery(action="PAYMENT_CAPTURED")).total == 0

    def test_get_is_tenant_scoped(self, api: Api, chain: list[AuditLog]) -> None:
        tenant, other = api.tenant or "", str(uuid.uuid4())

        def get(t: str) -> Any:
            return run_db(
                api.settings, lambda db: db.run(t, lambda s: audit.get_entry(s, chain[0].id))
            )

        assert get(tenant).hash == chain[0].hash
        with pytest.raises(NotFound):
            get(other)


def test_graphql_supplies_the_address_and_user_agent_too(api: Api) -> None:
    """The origin comes from auth.principals, not from REST: a payment made over GraphQL is
    recorded with its client address and user agent."""
    from tests.api.test_graphql import Gql

    gql = Gql(api)
    admin = api.admin_token()
    user, token = api.user_token()
    pet = api.create_pet(admin)
    placed = gql.create_order(token, pet["id"]).ok()["createOrder"]
    source = {"card": {k: v for k, v in CARD.items() if k != "object"}}
    paid = gql(
        "mutation($id: ID!, $input: PaymentInput!) { payOrder(id: $id, input: $input) { id } }",
        {"id": placed["id"], "input": {"amount": "150.00", "currency": "USD", "source": source}},
        token,
        **{"User-Agent": UA},
    ).ok()["payOrder"]
    row = one(api, action="PAYMENT_CAPTURED")
    assert (row.entity_id, str(row.actor_id)) == (paid["id"], user["id"])
    assert_origin(row)
