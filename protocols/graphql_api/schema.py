"""The executable schema: spec/schema.graphql (the contract) bound to the resolvers."""

from __future__ import annotations

from ariadne import ScalarType, load_schema_from_path, make_executable_schema
from graphql import GraphQLSchema

from protocols.graphql_api.resolvers import mutation, order, query
from settings import ROOT

SCHEMA_PATH = ROOT / "spec" / "schema.graphql"

money = ScalarType("Money")  # a decimal string: as sent, checked by the load functions
datetime_scalar = ScalarType("DateTime")  # RFC 3339 strings from the dump functions


@money.value_parser
def parse_money(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError('Money is a decimal string, such as "75.00".')
    return value


def build_schema() -> GraphQLSchema:
    return make_executable_schema(
        load_schema_from_path(str(SCHEMA_PATH)), query, mutation, order, money, datetime_scalar
    )
