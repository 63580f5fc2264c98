"""GraphQL at /v1/graphql through the real app (its middleware included): queries, mutations,
scopes and ownership, error codes, limits, and batched loading counted in SQL statements."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event

from app import create_app
from models import Order, Pet
from models.base import utcnow
from models.database import Database
from tests.api.test_orders import CARD
from tests.conftest import PET, Api, run_db
from tests.graphql_client import PET_FIELDS, GraphQLResult, graphql

PET_INPUT = dict(PET.items())


class Gql:
    """GraphQL calls in the test's tenant."""

    def __init__(self, api: Api) -> None:
        self.api = api

    def __call__(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        token: str | None = None,
        **h: str,
    ) -> GraphQLResult:
        return graphql(
            self.api.client, query, variables, token=token, headers=self.api.headers(**h)
        )

    def create_pet(self, token: str, **fields: Any) -> dict[str, Any]:
        r = self(
            f"mutation($input: PetInput!) {{ createPet(input: $input) {{ {PET_FIELDS} }} }}",
            {"input": {**PET_INPUT, **fields}},
            token,
        )
        pet: dict[str, Any] = r.ok()["createPet"]
        return pet

    def create_order(self, token: str | None, pet_id: str) -> GraphQLResult:
        return self(
            "mutation($input: OrderInput!) { createOrder(input: $input) "
            "{ id petId status totalAmount currency expiresAt pet { id status } } }",
            {"input": {"petId": pet_id}},
            token,
        )


@pytest.fixture
def gql(api: Api) -> Gql:
    return Gql(api)


class TestPets:
    def test_create_read_update_delete(self, api: Api, gql: Gql) -> None:
        admin = api.admin_token()
        pet = gql.create_pet(admin, medicalInfo={"vaccinated": True, "notes": "ok"})
        assert pet["name"] == "Buddy"
        assert pet["price"] == "150.00"
        assert pet["ageMonths"] == 24
        assert pet["species"] == "DOG"
        assert pet["status"] == "AVAILABLE"
        assert pet["photos"] == []
        assert pet["tenantId"] == api.tenant

        read = gql(
            "query($id: ID!) { pet(id: $id) { "
            + PET_FIELDS
            + " medicalInfo { vaccinated notes } } }",
            {"id": pet["id"]},
        ).ok()["pet"]
        assert read["medicalInfo"] == {"vaccinated": True, "notes": "ok"}
        assert {k: v for k, v in read.items() if k != "medicalInfo"} == pet

        rest = api.request("GET", f"/pets/{pet['id']}").json()  # the same fields as REST
        assert {k: rest.get(k) for k in pet} == pet

        updated = gql(
            "mutation($id: ID!, $input: PetInput!) { updatePet(id: $id, input: $input) "
            "{ name price status } }",
            {"id": pet["id"], "input": {**PET_INPUT, "name": "Max", "price": "99.5"}},
            admin,
        ).ok()["updatePet"]
        assert updated == {"name": "Max", "price": "99.50", "status": "AVAILABLE"}

        deleted = gql("mutation($id: ID!) { deletePet(id: $id) }", {"id": pet["id"]}, admin)
        assert deleted.ok() == {"deletePet": pet["id"]}
        gone = gql("query($id: ID!) { pet(id: $id) { id } }", {"id": pet["id"]})
        assert gone.status == 200
        assert gone.data == {"pet": None}
        assert gone.codes == ["NOT_FOUND"]

    def test_connection_pages_with_cursors_and_filters(self, api: Api, gql: Gql) -> None:
        admin = api.admin_token()
        for i in range(5):
            api.create_pet(admin, name=f"Dog {i}", ageMonths=10 + i)
        api.create_pet(admin, name="Cat", species="CAT")
        query = """query($first: Int, $after: String, $filter: PetFilter) {
          pets(first: $first, after: $after, filter: $filter) {
            totalCount edges { cursor node { name } }
            pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"""
        dogs = {"species": ["DOG"], "sort": "ageMonths"}
        first = gql(query, {"first": 2, "filter": dogs}).ok()["pets"]
        assert first["totalCount"] == 5
        assert [e["node"]["name"] for e in first["edges"]] == ["Dog 0", "Dog 1"]
        assert first["pageInfo"]["hasNextPage"]
        assert not first["pageInfo"]["hasPreviousPage"]
        second = gql(
            query, {"first": 2, "after": first["pageInfo"]["endCursor"], "filter": dogs}
        ).ok()["pets"]
        assert [e["node"]["name"] for e in second["edges"]] == ["Dog 2", "Dog 3"]
        assert second["pageInfo"]["hasPreviousPage"]
        # a window that does not line up with pages of `first` items
        odd = gql(query, {"first": 3, "after": first["edges"][0]["cursor"], "filter": dogs})
        assert [e["node"]["name"] for e in odd.ok()["pets"]["edges"]] == ["Dog 1", "Dog 2", "Dog 3"]
        last = gql(query, {"first": 3, "after": second["pageInfo"]["endCursor"], "filter": dogs})
        page = last.ok()["pets"]
        assert [e["node"]["name"] for e in page["edges"]] == ["Dog 4"]
        assert not page["pageInfo"]["hasNextPage"]

    def test_bad_filter_values_are_bad_user_input_naming_the_fields(self, gql: Gql) -> None:
        r = gql("{ pets(filter: {minAge: 10, maxAge: 1}) { totalCount } }")
        assert r.codes == ["BAD_USER_INPUT"]
        assert r.fields == ["minAge"]
        r = gql("{ pets(first: 101) { totalCount } }")
        assert r.codes == ["BAD_USER_INPUT"]
        assert r.fields == ["first"]
        r = gql('{ pets(after: "nope") { totalCount } }')
        assert r.codes == ["BAD_USER_INPUT"]
        assert r.fields == ["after"]
        r = gql('{ pet(id: "not-a-uuid") { id } }')
        assert r.codes == ["BAD_USER_INPUT"]
        assert r.fields == ["id"]
        r = gql(
            "query($f: PetFilter) { pets(filter: $f) { totalCount } }",
            {"f": {"species": ["DRAGON"]}},
        )
        assert r.status == 400
        assert r.codes == ["BAD_USER_INPUT"]
        assert r.fields == ["species[0]"]
        r = gql(
            "mutation($input: PetInput!) { createPet(input: $input) { id } }",
            {"input": {**PET_INPUT, "price": "a lot"}},
        )
        assert r.codes == ["BAD_USER_INPUT"]
        assert r.fields == ["price"]
        r = gql('{ pets(filter: {minPrice: "NaN"}) { totalCount } }')
        assert r.codes == ["BAD_USER_INPUT"]

    def test_the_domain_refuses_bad_pet_values_naming_every_field(self, api: Api, gql: Gql) -> None:
        r = gql(
            "mutation($input: PetInput!) { createPet(input: $input) { id } }",
            {"input": {**PET_INPUT, "ageMonths": -1, "name": "", "price": "1.999"}},
            api.admin_token(),
        )
        assert r.codes == ["BAD_USER_INPUT"]
        assert sorted(r.fields) == ["ageMonths", "name", "price"]

    def test_managing_pets_needs_a_token_with_write_pets(self, api: Api, gql: Gql) -> None:
        mutation = "mutation($input: PetInput!) { createPet(input: $input) { id } }"
        assert gql(mutation, {"input": PET_INPUT}).codes == ["UNAUTHENTICATED"]
        _, token = api.user_token()
        r = gql(mutation, {"input": PET_INPUT}, token)
        assert r.codes == ["FORBIDDEN"]
        assert r.data == {"createPet": None}


class TestOrders:
    def test_order_pay_read_list_cancel(self, api: Api, gql: Gql) -> None:
        admin = api.admin_token()
        _, token = api.user_token()
        pets = [api.create_pet(admin, name=f"P{i}") for i in range(2)]
        placed = gql.create_order(token, pets[0]["id"]).ok()["createOrder"]
        assert placed["status"] == "PLACED"
        assert placed["totalAmount"] == "150.00"
        assert placed["pet"] == {"id": pets[0]["id"], "status": "PENDING"}
        paid = gql(
            "mutation($id: ID!, $input: PaymentInput!) { payOrder(id: $id, input: $input) "
            "{ orderId amount currency status source { object number last4 brand } "
            "receipt { receiptId } } }",
            {
                "id": placed["id"],
                "input": {
                    "amount": "150.00",
                    "currency": "USD",
                    "source": {"card": {k: v for k, v in CARD.items() if k != "object"}},
                },
            },
            token,
        ).ok()["payOrder"]
        assert paid["status"] == "SUCCEEDED"
        assert paid["amount"] == "150.00"
        assert paid["source"] == {
            "object": "card",
            "number": "************4242",
            "last4": "4242",
            "brand": "VISA",
        }
        assert paid["receipt"]["receiptId"]
        second = gql.create_order(token, pets[1]["id"]).ok()["createOrder"]

        read = gql(
            "query($id: ID!) { order(id: $id) { id status receipt { receiptId } pet { name } } }",
            {"id": placed["id"]},
            token,
        ).ok()["order"]
        assert read["status"] == "APPROVED"
        assert read["pet"] == {"name": "P0"}
        assert read["receipt"] == paid["receipt"]

        mine = gql(
            "{ myOrders(first: 10) { totalCount edges { node { id status receipt "
            "{ receiptId } pet { name } } } } }",
            token=token,
        ).ok()["myOrders"]
        assert mine["totalCount"] == 2
        assert [e["node"]["id"] for e in mine["edges"]] == [second["id"], placed["id"]]
        assert mine["edges"][1]["node"]["receipt"] == paid["receipt"]

        cancelled = gql(
            "mutation($id: ID!) { cancelOrder(id: $id) { status pet { status } } }",
            {"id": second["id"]},
            token,
        ).ok()["cancelOrder"]
        assert cancelled == {"status": "CANCELLED", "pet": {"status": "AVAILABLE"}}
        again = gql(
            "mutation($id: ID!) { cancelOrder(id: $id) { status } }", {"id": second["id"]}, token
        )
        assert again.codes == ["CONFLICT"]
        assert again.fields == ["status"]

    def test_a_guest_order_is_reached_with_its_guest_token(self, api: Api, gql: Gql) -> None:
        pet = api.create_pet(api.admin_token())
        placed = gql(
            "mutation($input: OrderInput!) { createOrder(input: $input) { id userId guestToken } }",
            {"input": {"petId": pet["id"]}},
        ).ok()["createOrder"]
        assert placed["userId"] is None
        assert placed["guestToken"]
        query = "query($id: ID!) { order(id: $id) { id guestToken pet { id } } }"
        assert gql(query, {"id": placed["id"]}).codes == ["UNAUTHENTICATED"]
        assert gql(query, {"id": placed["id"]}, **{"X-Order-Token": "wrong"}).codes == ["NOT_FOUND"]
        seen = gql(query, {"id": placed["id"]}, **{"X-Order-Token": placed["guestToken"]})
        assert seen.ok()["order"] == {
            "id": placed["id"],
            "guestToken": None,
            "pet": {"id": pet["id"]},
        }

    def test_another_users_order_is_not_found(self, api: Api, gql: Gql) -> None:
        pet = api.create_pet(api.admin_token())
        _, owner = api.user_token()
        _, other = api.user_token()
        order = gql.create_order(owner, pet["id"]).ok()["createOrder"]
        for query in (
            "query($id: ID!) { order(id: $id) { id } }",
            "mutation($id: ID!) { cancelOrder(id: $id) { id } }",
        ):
            r = gql(query, {"id": order["id"]}, other)
            assert r.codes == ["NOT_FOUND"]
        assert gql("{ myOrders { totalCount } }", token=other).ok() == {
            "myOrders": {"totalCount": 0}
        }

    def test_my_orders_needs_read_orders(self, api: Api, gql: Gql) -> None:
        assert gql("{ myOrders { totalCount } }").codes == ["UNAUTHENTICATED"]
        user, _ = api.user_token()
        narrow = api.client.app.container.tokens.issue(  # type: ignore[attr-defined]
            uuid.UUID(user["id"]), "user", api.tenant, scopes=frozenset({"read:pets"})
        ).token
        assert gql("{ myOrders { totalCount } }", token=narrow).codes == ["FORBIDDEN"]

    def test_unknown_or_unavailable_pets(self, api: Api, gql: Gql) -> None:
        _, token = api.user_token()
        r = gql.create_order(token, str(uuid.uuid4()))
        assert r.codes == ["BAD_USER_INPUT"]
        assert r.fields == ["petId"]
        pet = api.create_pet(api.admin_token(), status="ADOPTED")
        r = gql.create_order(token, pet["id"])
        assert r.codes == ["CONFLICT"]
        assert r.fields == ["petId"]


class TestStoreAndAccount:
    def test_inventory_and_me(self, api: Api, gql: Gql) -> None:
        admin = api.admin_token()
        api.create_pet(admin)
        api.create_pet(admin, species="CAT", status="ADOPTED")
        user, token = api.user_token()
        data = gql(
            "{ inventory { available adopted total bySpecies { species available "
            "adopted total } } me { id username role } }",
            token=token,
        ).ok()
        inventory = data["inventory"]
        assert (inventory["available"], inventory["adopted"], inventory["total"]) == (1, 1, 2)
        assert {"species": "CAT", "available": 0, "adopted": 1, "total": 1} in inventory[
            "bySpecies"
        ]
        assert data["me"] == {"id": user["id"], "username": user["username"], "role": "user"}

    def test_a_refused_field_leaves_the_others(self, api: Api, gql: Gql) -> None:
        r = gql("{ inventory { total } pets { totalCount } }")
        assert r.status == 200
        assert r.codes == ["UNAUTHENTICATED"]
        assert r.data == {"inventory": None, "pets": {"totalCount": 0}}

    def test_bad_token_and_foreign_tenant(self, api: Api, gql: Gql) -> None:
        assert gql("{ me { id } }", token="not-a-token").codes == ["UNAUTHENTICATED"]
        _, token = api.user_token()
        other_tenant = {"X-Tenant-ID": str(uuid.uuid4())}
        r = graphql(api.client, "{ me { id } }", token=token, headers=other_tenant)
        assert r.codes == ["FORBIDDEN"]


def _nested(depth: int) -> str:
    """An introspection query ``depth`` levels deep: __schema types fields type ofType ..."""
    inner = "name"
    for _ in range(depth - 4):
        inner = f"ofType {{ {inner} }}"
    return f"{{ __schema {{ types {{ fields {{ type {{ {inner} }} }} }} }} }}"


class TestLimits:
    def test_a_30_deep_query_is_refused_before_it_runs(self, gql: Gql) -> None:
        r = gql(_nested(30))
        assert r.status == 400
        assert r.data is None
        assert "QUERY_TOO_COMPLEX" in r.codes

    def test_the_standard_introspection_query_passes(self, gql: Gql) -> None:
        from graphql import get_introspection_query

        r = gql(get_introspection_query())
        assert r.status == 200, r.errors
        assert r.ok()["__schema"]["queryType"]["name"] == "Query"

    def test_complexity_budget(self, gql: Gql) -> None:
        wide = (
            "{ "
            + " ".join(f"p{i}: pets(first: 100) {{ edges {{ node {{ id }} }} }}" for i in range(12))
            + " }"
        )
        r = gql(wide)
        assert r.status == 400
        assert r.codes == ["QUERY_TOO_COMPLEX"]
        assert "cost" in r.errors[0]["message"].lower()

    def test_the_cost_is_judged_per_request_on_a_cached_document(self, gql: Gql) -> None:
        aliases = " ".join(f"p{i}: pets(first: $n) {{ totalCount }}" for i in range(12))
        query = f"query($n: Int) {{ {aliases} }}"
        assert gql(query, {"n": 1}).status == 200
        assert gql(query, {"n": 100}).codes == ["QUERY_TOO_COMPLEX"]
        assert gql(query, {"n": 2}).status == 200

    def test_a_body_over_the_limit_is_413_and_every_response_has_a_request_id(
        self, api: Api
    ) -> None:
        big = {"query": "{ pets { totalCount } }", "variables": {"pad": "x" * (1024 * 1024)}}
        r = api.client.post("/v1/graphql", json=big, headers=api.headers())
        assert r.status_code == 413
        assert r.headers["x-request-id"]
        assert r.json()["status"] == 413
        ok = api.client.post(
            "/v1/graphql",
            json={"query": "{ pets { totalCount } }"},
            headers=api.headers(**{"X-Request-ID": "gql-req-1"}),
        )
        assert ok.status_code == 200
        assert ok.headers["x-request-id"] == "gql-req-1"

    def test_syntax_errors(self, gql: Gql) -> None:
        r = gql("{ pets { ")
        assert r.status == 400
        assert r.codes == ["GRAPHQL_PARSE_FAILED"]

    def test_graphiql_is_off_unless_the_development_setting_is_on(
        self, api: Api, settings: Any
    ) -> None:
        html = {"Accept": "text/html"}
        assert api.client.get("/v1/graphql", headers=html).status_code == 405
        dev = create_app(settings.with_overrides(graphiql=True))
        with dev.test_client() as client:
            page = client.get("/v1/graphql", headers=html)
        assert page.status_code == 200
        assert "graphiql" in page.text.lower()


def test_over_the_rate_limit_is_rate_limited_429_with_retry_after(settings: Any) -> None:
    limited = create_app(settings.with_overrides(rate_limit_per_minute=2))
    query = {"query": "{ pets { totalCount } }"}
    with limited.test_client() as client:
        first = client.post("/v1/graphql", json=query)
        assert first.status_code == 200
        assert first.headers["ratelimit-limit"] == "2"
        assert first.headers["ratelimit-remaining"] == "1"
        client.post("/v1/graphql", json=query)
        refused = client.post("/v1/graphql", json=query)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    error = refused.json()["errors"][0]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["extensions"]["retryAfter"] == int(refused.headers["retry-after"])


def test_the_trailing_slash_path_is_counted_once(settings: Any) -> None:
    """/v1/graphql/ is served by the adapter too; REST's middleware must not count it again."""
    limited = create_app(settings.with_overrides(rate_limit_per_minute=5))
    query = {"query": "{ pets { totalCount } }"}
    with limited.test_client() as client:
        first = client.post("/v1/graphql/", json=query)
        second = client.post("/v1/graphql/", json=query)
    assert first.status_code == second.status_code == 200
    assert first.headers.get_list("ratelimit-remaining") == ["4"]
    assert second.headers.get_list("ratelimit-remaining") == ["3"]


@contextmanager
def counted_statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []
    lock = threading.Lock()

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        with lock:
            seen.append(statement)

    engines = list(db._engines)
    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)


def test_a_page_of_100_orders_with_their_pets_costs_3_statements(
    api: Api, gql: Gql, app: Any
) -> None:
    user, token = api.user_token()
    tenant = api.tenant or ""

    async def arrange(db: Database) -> None:
        def work(session: Any) -> None:
            now = utcnow()
            for i in range(100):
                pet = Pet(
                    name=f"Pet {i}",
                    species="DOG",
                    age_months=12,
                    price=Decimal("10.00"),
                    currency="USD",
                    status="PENDING",
                    photos=[],
                    version=1,
                    created_at=now,
                    updated_at=now,
                )
                session.add(pet)
                session.flush()
                session.add(
                    Order(
                        pet_id=pet.id,
                        user_id=uuid.UUID(user["id"]),
                        status="PLACED",
                        total_amount=pet.price,
                        currency="USD",
                        version=1,
                        expires_at=now + timedelta(hours=1),
                        created_at=now + timedelta(microseconds=i),
                        updated_at=now,
                    )
                )

        await db.run(tenant, work, write=True)

    run_db(api.settings, arrange)
    query = (
        "{ myOrders(first: 100) { totalCount edges { node { id status pet { id name price } } } } }"
    )
    gql(query, token=token).ok()  # warms the role cache (one lookup per token subject)
    with counted_statements(app.container.db) as statements:
        data = gql(query, token=token).ok()["myOrders"]
    assert data["totalCount"] == 100
    assert len(data["edges"]) == 100
    assert {e["node"]["pet"]["name"] for e in data["edges"]} == {f"Pet {i}" for i in range(100)}
    assert len(statements) <= 3, statements


class TestHostileInput:
    """What a review found: inputs that must neither echo secrets, nor escape the limits."""

    PAY = (
        "mutation($id: ID!, $input: PaymentInput!) { payOrder(id: $id, input: $input) { status } }"
    )

    @pytest.mark.parametrize(
        "card",
        [
            {"number": "4242424242424242", "cvc": "987", "expMonth": 12, "expYear": 2031, "x": 1},
            {"number": 4242424242424242, "cvc": "987", "expMonth": 12, "expYear": 2031},
            {"cvc": "987", "expMonth": "12", "expYear": 2031, "number": "4242424242424242"},
        ],
        ids=["unknown-field", "number-as-int", "month-as-string"],
    )
    def test_a_refused_card_is_never_echoed(self, gql: Gql, card: dict[str, Any]) -> None:
        body = {"amount": "10.00", "currency": "USD", "source": {"card": card}}
        r = gql(self.PAY, {"id": str(uuid.uuid4()), "input": body})
        assert r.codes == ["BAD_USER_INPUT"]
        text = r.response.text
        assert "4242424242424242" not in text
        assert "987" not in text

    def test_doubling_fragment_spreads_are_measured_once(self, gql: Gql) -> None:
        """40 fragments each spreading the next twice: 2^40 walks if each spread were walked
        again; measured once each, the document is judged at once (and is shallow)."""
        n = 40
        fragments = " ".join(
            f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(1, n)
        )
        query = f"query {{ ...F1 }} {fragments} fragment F{n} on Query {{ inventory {{ total }} }}"
        r = gql(query)
        assert r.status in (200, 400)  # answered, whatever the verdict; a hang fails the run
        assert "INTERNAL_SERVER_ERROR" not in r.codes

    def test_the_cost_counts_variable_defaults(self, gql: Gql) -> None:
        aliases = " ".join(f"p{i}: pets(first: $n) {{ totalCount }}" for i in range(12))
        assert gql(f"query($n: Int = 1) {{ {aliases} }}").status == 200
        assert gql(f"query($n: Int = 100) {{ {aliases} }}").codes == ["QUERY_TOO_COMPLEX"]

    def test_first_null_is_the_default_and_a_forged_cursor_is_refused(self, gql: Gql) -> None:
        assert gql("{ pets(first: null) { totalCount } }").status == 200
        import base64

        cursor = base64.urlsafe_b64encode(b"offset:99999999999999999999").decode()
        r = gql("query($a: String) { pets(after: $a) { totalCount } }", {"a": cursor})
        assert r.codes == ["BAD_USER_INPUT"]

    def test_a_tenant_that_is_not_a_uuid_is_refused(self, api: Api) -> None:
        r = graphql(api.client, "{ pets { totalCount } }", headers={"X-Tenant-ID": "x" * 60})
        assert r.codes == ["BAD_USER_INPUT"]
        assert r.fields == ["X-Tenant-ID"]
