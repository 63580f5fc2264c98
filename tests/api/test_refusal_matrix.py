"""The same refusal over REST and over GraphQL, each in its own form: an HTTP status and
problem+json over REST, ``extensions.code`` over GraphQL, both from the one error table
(protocols/errors.py), naming the same fields where the error names any."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from protocols.errors import ERRORS
from services.shared.errors import (
    AuthenticationFailed,
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
)
from tests.conftest import PET, Api
from tests.graphql_client import graphql


@dataclass
class Call:
    method: str
    path: str
    token: str | None = None
    json: Any = None
    query: str = ""
    variables: dict[str, Any] | None = None


@dataclass
class Case:
    error: type[DomainError]
    arrange: Callable[[Api], tuple[Call, Call]]  # (REST call, GraphQL call) that must be refused
    fields: tuple[str, ...] = ()


def _no_token(api: Api) -> tuple[Call, Call]:
    mutation = "mutation($input: PetInput!) { createPet(input: $input) { id } }"
    return Call("POST", "/pets", json=PET), Call("", "", query=mutation, variables={"input": PET})


def _wrong_scope(api: Api) -> tuple[Call, Call]:
    _, user = api.user_token()  # a customer's token has no write:pets
    mutation = "mutation($input: PetInput!) { createPet(input: $input) { id } }"
    return (
        Call("POST", "/pets", user, json=PET),
        Call("", "", user, query=mutation, variables={"input": PET}),
    )


def _someone_elses(api: Api) -> tuple[Call, Call]:
    pet = api.create_pet(api.admin_token())
    _, owner = api.user_token()
    _, other = api.user_token()
    r = api.request("POST", "/orders", owner, json={"petId": pet["id"]})
    assert r.status_code == 201, r.text
    order_id = r.json()["id"]
    query = "query($id: ID!) { order(id: $id) { id } }"
    return (
        Call("GET", f"/orders/{order_id}", other),
        Call("", "", other, query=query, variables={"id": order_id}),
    )


def _invalid_value(api: Api) -> tuple[Call, Call]:
    query = "{ pets(filter: {minAge: 10, maxAge: 1}) { totalCount } }"
    return Call("GET", "/pets?minAge=10&maxAge=1"), Call("", "", query=query)


def _missing(api: Api) -> tuple[Call, Call]:
    pet_id = str(uuid.uuid4())
    query = "query($id: ID!) { pet(id: $id) { id } }"
    return Call("GET", f"/pets/{pet_id}"), Call("", "", query=query, variables={"id": pet_id})


def _conflicting_state(api: Api) -> tuple[Call, Call]:
    pet = api.create_pet(api.admin_token(), status="ADOPTED")
    _, user = api.user_token()
    mutation = "mutation($input: OrderInput!) { createOrder(input: $input) { id } }"
    return (
        Call("POST", "/orders", user, json={"petId": pet["id"]}),
        Call("", "", user, query=mutation, variables={"input": {"petId": pet["id"]}}),
    )


def _bad_token_on_a_public_read(api: Api) -> tuple[Call, Call]:
    """A public read needs no token, but a token that is sent must be valid."""
    pet = api.create_pet(api.admin_token())
    query = "query($id: ID!) { pet(id: $id) { id } }"
    return (
        Call("GET", f"/pets/{pet['id']}", "not-a-token"),
        Call("", "", "not-a-token", query=query, variables={"id": pet["id"]}),
    )


def _another_tenants_token_on_a_public_read(api: Api) -> tuple[Call, Call]:
    _, foreign = Api(api.client, api.settings, str(uuid.uuid4())).user_token()
    return Call("GET", "/pets", foreign), Call("", "", foreign, query="{ pets { totalCount } }")


CASES = {
    "no token": Case(AuthenticationFailed, _no_token),
    "wrong scope": Case(Forbidden, _wrong_scope),
    "another user's object": Case(NotFound, _someone_elses),
    "invalid value": Case(InvalidInput, _invalid_value, ("minAge",)),
    "missing object": Case(NotFound, _missing),
    "conflicting state": Case(Conflict, _conflicting_state, ("petId",)),
    "bad token on a public read": Case(AuthenticationFailed, _bad_token_on_a_public_read),
    "another tenant's token on a public read": Case(
        Forbidden, _another_tenants_token_on_a_public_read
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_rest_and_graphql_refuse_alike(api: Api, case: Case) -> None:
    rest_call, graphql_call = case.arrange(api)
    row = ERRORS[case.error]

    rest = api.request(rest_call.method, rest_call.path, rest_call.token, json=rest_call.json)
    assert rest.status_code == row.http, rest.text
    problem = rest.json()
    assert rest.headers["content-type"].startswith("application/problem+json")
    assert tuple(e["field"] for e in problem.get("errors", [])) == case.fields

    result = graphql(
        api.client,
        graphql_call.query,
        graphql_call.variables,
        token=graphql_call.token,
        headers=api.headers(),
    )
    assert result.status == 200
    assert result.codes == [row.graphql]
    assert tuple(result.fields) == case.fields
    assert result.data is not None
    assert set(result.data.values()) == {None}
