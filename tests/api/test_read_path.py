"""The lean read path (issue 15): every hot read binds the caller's tenant; keyset cursors;
totals from pet_counts; indexes that serve the default list without a sort step."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, event, text
from starlette.testclient import TestClient

from models.database import Database
from services.catalogue import reads
from settings import Settings
from tests.conftest import Api, run_db

READ_TABLES = ("pets", "pet_counts", "orders", "payments")


@contextmanager
def recorded_sql() -> Iterator[list[tuple[str, Any]]]:
    """Every statement any engine runs meanwhile, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        seen.append((statement, params))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)


def _values(params: Any) -> list[Any]:
    if isinstance(params, dict):
        return list(params.values())
    if isinstance(params, list | tuple):
        return list(params)
    return []


def assert_tenant_bound(seen: list[tuple[str, Any]], tenant: str) -> int:
    """Each SELECT reading a tenant table filters on tenant_id with the tenant bound (not
    written into the SQL); returns how many there were."""
    reads = [
        (sql, params)
        for sql, params in seen
        if sql.lstrip().upper().startswith("SELECT")
        and any(f"FROM {t}" in sql for t in READ_TABLES)
    ]
    for sql, params in reads:
        assert "tenant_id = " in sql, sql
        assert tenant in _values(params), (sql, params)
        assert tenant not in sql, sql
    return len(reads)


def _admin(api: Api) -> str:
    return api.admin_token()


class TestEveryReadFiltersByTenant:
    def test_each_hot_read_binds_the_tenant(self, api: Api) -> None:
        token = _admin(api)
        pets = [api.create_pet(token, name=f"P{i}", species="CAT") for i in range(3)]
        user, user_token = api.user_token()
        order = api.request("POST", "/orders", user_token, json={"petId": pets[0]["id"]})
        assert order.status_code == 201, order.text
        order_id = order.json()["id"]
        cursor = api.request("GET", "/pets", params={"limit": 1}).json()["links"]["next"]
        reads: list[tuple[str, dict[str, Any]]] = [
            ("GET", {"url": "/pets"}),
            ("GET", {"url": "/pets", "params": {"status": "AVAILABLE"}}),
            ("GET", {"url": "/pets", "params": {"size": "LARGE", "sort": "price"}}),
            ("GET", {"url": "/pets", "params": {"name": "p", "minAge": 1}}),
            ("QUERY", {"url": "/pets/search", "json": {"criteria": {"species": ["CAT"]}}}),
            ("GET", {"url": f"/pets/{pets[1]['id']}"}),
            ("GET", {"url": "/inventory", "token": token}),
            ("GET", {"url": f"/orders/{order_id}", "token": user_token}),
        ]
        for method, kw in reads:
            url = kw.pop("url")
            with recorded_sql() as seen:
                r = api.request(method, url, kw.pop("token", None), **kw)
            assert r.status_code == 200, (url, r.text)
            assert assert_tenant_bound(seen, api.tenant or "") >= 1, url
        with recorded_sql() as seen:
            r = api.client.get(cursor, headers=api.headers())
        assert r.status_code == 200
        assert assert_tenant_bound(seen, api.tenant or "") >= 1
        assert user["id"]

    def test_another_tenant_sees_none_of_it(
        self, api: Api, client: TestClient, settings: Settings
    ) -> None:
        token = _admin(api)
        mine = [api.create_pet(token, name=f"Mine{i}", species="DOG") for i in range(3)]
        _, user_token = api.user_token()
        order = api.request("POST", "/orders", user_token, json={"petId": mine[0]["id"]}).json()
        other = Api(client, settings, str(uuid.uuid4()))
        other_token = _admin(other)
        theirs = other.create_pet(other_token, name="Theirs", species="DOG")

        listed = other.request("GET", "/pets").json()
        assert [p["id"] for p in listed["data"]] == [theirs["id"]]
        assert listed["pagination"]["totalItems"] == 1
        filtered = other.request("GET", "/pets", params={"species": "DOG"}).json()
        assert filtered["pagination"]["totalItems"] == 1
        found = other.request("QUERY", "/pets/search", json={"criteria": {"name": "Mine"}})
        assert found.json()["data"] == []
        assert other.request("GET", f"/pets/{mine[1]['id']}").status_code == 404
        counts = other.request("GET", "/inventory", other_token).json()
        assert counts["total"] == 1
        _, other_user = other.user_token()
        assert other.request("GET", f"/orders/{order['id']}", other_user).status_code == 404
        # a cursor is only a position: made in one tenant, it reads the other's own list
        cursor = api.request("GET", "/pets", params={"limit": 1}).json()["links"]["next"]
        crossed = other.client.get(cursor, headers=other.headers()).json()
        assert {p["id"] for p in crossed["data"]} <= {theirs["id"]}
        # and the first tenant still sees its own
        assert api.request("GET", "/pets").json()["pagination"]["totalItems"] == 3


def _walk(api: Api, params: dict[str, Any]) -> tuple[list[str], list[int]]:
    """Follow links.next from the first page to the end; the ids and page numbers seen."""
    body = api.request("GET", "/pets", params=params).json()
    ids, pages = [p["id"] for p in body["data"]], [body["pagination"]["page"]]
    while "next" in body["links"]:
        r = api.client.get(body["links"]["next"], headers=api.headers())
        assert r.status_code == 200, r.text
        body = r.json()
        ids += [p["id"] for p in body["data"]]
        pages.append(body["pagination"]["page"])
    return ids, pages


SORTS = ["name", "ageMonths", "price", "createdAt", "updatedAt"]


class TestKeysetPagination:
    @pytest.mark.parametrize("sort", [*SORTS, *(f"-{s}" for s in SORTS)])
    def test_following_next_gives_every_pet_once_in_the_offset_order(
        self, api: Api, sort: str
    ) -> None:
        token = _admin(api)
        for i in range(7):  # equal sort values on purpose: the id breaks the ties
            api.create_pet(token, name=f"N{i % 2}", ageMonths=i % 3, price=f"{10 + i % 2}.00")
        by_offset = api.request("GET", "/pets", params={"sort": sort, "limit": 100}).json()
        expected = [p["id"] for p in by_offset["data"]]
        ids, pages = _walk(api, {"sort": sort, "limit": 2})
        assert ids == expected
        assert pages == [1, 2, 3, 4]

    def test_the_cursor_keeps_filters_and_the_page_reports_totals(self, api: Api) -> None:
        token = _admin(api)
        for i in range(5):
            api.create_pet(token, name=f"C{i}", species="CAT")
        api.create_pet(token, name="D", species="DOG")
        first = api.request("GET", "/pets", params={"species": "CAT", "limit": 2}).json()
        nxt = first["links"]["next"]
        assert "species=CAT" in nxt
        assert "cursor=" in nxt
        assert "page=" not in nxt
        second = api.client.get(nxt, headers=api.headers()).json()
        assert second["pagination"] == {"page": 2, "limit": 2, "totalItems": 5, "totalPages": 3}
        assert second["links"]["self"] == nxt
        assert second["links"]["prev"].endswith("page=1&limit=2")
        assert second["links"]["last"].endswith("page=3&limit=2")
        ids, _ = _walk(api, {"species": "CAT", "limit": 2})
        assert len(set(ids)) == 5

    def test_search_takes_a_cursor_in_its_body(self, api: Api) -> None:
        token = _admin(api)
        for name in ("A", "B", "C"):
            api.create_pet(token, name=name)
        body = {"sort": {"field": "name", "order": "ASC"}, "pagination": {"limit": 2}}
        first = api.request("QUERY", "/pets/search", json=body).json()
        cursor = first["links"]["next"].split("cursor=")[1]
        body["pagination"] = {"limit": 2, "cursor": cursor}
        second = api.request("QUERY", "/pets/search", json=body).json()
        assert [p["name"] for p in second["data"]] == ["C"]
        assert "next" not in second["links"]

    def _cursor(self, api: Api, **params: Any) -> str:
        api.create_pet(api.admin_token())
        api.create_pet(api.admin_token())
        body = api.request("GET", "/pets", params={"limit": 1, **params}).json()
        return str(body["links"]["next"].split("cursor=")[1])

    @pytest.mark.parametrize(
        "forged",
        [
            "not-base64!",
            "abc",
            base64.urlsafe_b64encode(b"[1, 2]").decode().rstrip("="),
            base64.urlsafe_b64encode(
                orjson.dumps({"v": 1, "s": "-createdAt", "k": 5, "i": "00" * 16, "p": 2})
            ).decode(),
            base64.urlsafe_b64encode(
                orjson.dumps({"v": 1, "s": "-weight", "k": 5, "i": "00" * 16, "p": 2})
            ).decode(),
            base64.urlsafe_b64encode(
                orjson.dumps({"v": 1, "s": "price", "k": "1e9", "i": "zz" * 16, "p": 2})
            ).decode(),
            "A" * 600,
        ],
    )
    def test_a_forged_cursor_is_a_400_naming_cursor(self, api: Api, forged: str) -> None:
        r = api.request("GET", "/pets", params={"cursor": forged})
        assert r.status_code == 400, r.text
        assert "cursor" in r.text
        r = api.request("QUERY", "/pets/search", json={"pagination": {"cursor": forged}})
        assert r.status_code == 400, r.text
        assert "cursor" in r.text

    def test_a_cursor_for_another_sort_or_with_page_is_a_400(self, api: Api) -> None:
        cursor = self._cursor(api)
        r = api.request("GET", "/pets", params={"cursor": cursor, "sort": "name"})
        assert r.status_code == 400, r.text
        assert r.json()["errors"][0]["field"] == "cursor"
        r = api.request("GET", "/pets", params={"cursor": cursor, "page": 1})
        assert r.status_code == 400, r.text
        assert r.json()["errors"][0]["field"] == "cursor"
        assert api.request("GET", "/pets", params={"cursor": cursor}).status_code == 200


class TestTotals:
    def test_totals_and_inventory_follow_creates_status_changes_and_deletes(self, api: Api) -> None:
        token = _admin(api)
        cats = [api.create_pet(token, name=f"C{i}", species="CAT") for i in range(3)]
        api.create_pet(token, name="D", species="DOG", status="PENDING")

        def total(**params: Any) -> int:
            body = api.request("GET", "/pets", params=params).json()
            return int(body["pagination"]["totalItems"])

        def inventory() -> dict[str, Any]:
            body: dict[str, Any] = api.request("GET", "/inventory", token).json()
            return body

        assert (total(), total(species="CAT"), total(status="PENDING")) == (4, 3, 1)
        assert total(species="CAT", status="AVAILABLE") == 3
        assert total(species="CAT", size="LARGE") == 3  # a filter the counters cannot answer
        assert inventory()["total"] == 4
        # a status change (replace) moves a pet between counters
        changed = {**cats[0], "status": "NOT_AVAILABLE"}
        for key in ("id", "createdAt", "updatedAt", "links", "photos", "tenantId"):
            changed.pop(key, None)
        assert api.request("PUT", f"/pets/{cats[0]['id']}", token, json=changed).status_code == 200
        assert total(status="AVAILABLE") == 2
        assert total(status="NOT_AVAILABLE") == 1
        # an order reserves a pet (AVAILABLE → PENDING) in the same transaction
        _, user_token = api.user_token()
        placed = api.request("POST", "/orders", user_token, json={"petId": cats[1]["id"]})
        assert placed.status_code == 201, placed.text
        assert (total(status="PENDING"), total(status="AVAILABLE")) == (2, 1)
        assert inventory()["pending"] == 2
        # a delete takes it away
        assert api.request("DELETE", f"/pets/{cats[2]['id']}", token).status_code == 204
        assert (total(), total(species="CAT"), total(status="AVAILABLE")) == (3, 2, 0)
        assert inventory()["total"] == 3
        assert inventory()["bySpecies"]["CAT"]["total"] == 2

    def test_the_counters_match_a_count_of_the_rows(self, api: Api, settings: Settings) -> None:
        token = _admin(api)
        for i in range(4):
            api.create_pet(token, name=f"X{i}", species=("CAT", "DOG")[i % 2])

        async def compare(db: Database) -> tuple[list[Any], list[Any]]:
            def work(session: Any) -> tuple[list[Any], list[Any]]:
                counted = session.execute(
                    text(
                        "SELECT species, status, count(*) FROM pets WHERE tenant_id = :t "
                        "GROUP BY species, status ORDER BY species, status"
                    ),
                    {"t": api.tenant},
                ).all()
                kept = session.execute(
                    text(
                        "SELECT species, status, n FROM pet_counts WHERE tenant_id = :t "
                        "AND n > 0 ORDER BY species, status"
                    ),
                    {"t": api.tenant},
                ).all()
                return [tuple(r) for r in counted], [tuple(r) for r in kept]

            return await db.run(api.tenant or "", work)

        counted, kept = run_db(settings, compare)
        assert counted == kept == [("CAT", "AVAILABLE", 2), ("DOG", "AVAILABLE", 2)]


def explain(db: Database, statement: Any, params: dict[str, Any]) -> str:
    """The plan of ``statement`` as the app runs it: the SQL and processed values the driver
    received, run again with EXPLAIN (QUERY PLAN) in front."""
    prefix = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN "
    with db.engine.connect() as conn, recorded_sql() as seen:
        conn.execute(statement, params).all()
        sql, driver_params = seen[-1]
        if not db.is_sqlite:
            # A test table is tiny and its statistics depend on what other tests left, so the
            # planner may prefer any index and sort a handful of rows. Priced out of scans and
            # sorts, it shows whether an index serves this statement's filter and order; with
            # none it still has to sort (and the test fails).
            conn.exec_driver_sql("SET enable_seqscan = off")
            conn.exec_driver_sql("SET enable_sort = off")
        rows = conn.exec_driver_sql(prefix + sql, driver_params).all()
        if not db.is_sqlite:
            conn.exec_driver_sql("RESET enable_seqscan")
            conn.exec_driver_sql("RESET enable_sort")
    return " | ".join(str(row[-1]) for row in rows)


class TestIndexes:
    SHAPES = [
        (frozenset(), "createdAt", True, None),
        (frozenset({"status"}), "createdAt", True, None),
        (frozenset(), "createdAt", True, datetime(2026, 1, 1, tzinfo=UTC)),
        (frozenset(), "price", False, Decimal("10.00")),
        (frozenset(), "name", False, None),
        (frozenset(), "ageMonths", True, None),
        (frozenset(), "updatedAt", False, None),
    ]

    @pytest.mark.parametrize(("filters", "sort", "descending", "after"), SHAPES)
    def test_a_list_reads_an_index_in_order_without_a_sort_step(
        self, settings: Settings, filters: frozenset[str], sort: str, descending: bool, after: Any
    ) -> None:
        """The default list (and a status filter, keyset pages, the other sorts): an index
        that leads with the tenant, no temporary B-tree (SQLite), no Sort node (PostgreSQL)."""
        statement = reads.list_statement(filters, sort, descending, after is not None)
        params: dict[str, Any] = {"tenant": "t", "offset": 0, "limit": 21}
        if "status" in filters:
            params["status"] = ["AVAILABLE"]
        if after is not None:
            params.update(after_value=after, after_id=uuid.UUID(int=0))

        async def plan(db: Database) -> str:
            return explain(db, statement, params)

        found = run_db(settings, plan)
        assert "ix_pets_tenant_" in found, found
        if settings.database_url.startswith("sqlite"):
            assert "TEMP B-TREE" not in found, found
            assert "SEARCH pets USING INDEX" in found, found
        else:
            assert "Sort" not in found, found
            assert "Index Scan" in found, found
