"""The executable schema: spec/schema.graphql (the contract) bound to the resolvers."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from ariadne import ScalarType, load_schema_from_path, make_executable_schema
from graphql import GraphQLSchema

from protocols.graphql_api.resolvers import mutation, order, query
from settings import ROOT

SCHEMA_PATH = ROOT / "spec" / "schema.graphql"

money = ScalarType("Money")  # a decimal string; its range and places are the domain's to judge
datetime_scalar = ScalarType("DateTime")  # RFC 3339 strings from the dump functions


@money.value_parser
def parse_money(value: object) -> str:
    """The type check at the edge (as the OpenAPI pattern is): a string holding a finite decimal
    number. Whether the amount is acceptable is for the load functions and the domain."""
    try:
        if isinstance(value, str) and Decimal(value).is_finite():
            return value
    except InvalidOperation:
        pass
    raise ValueError('Money is a decimal string, such as "75.00".')


def build_schema() -> GraphQLSchema:
    return make_executable_schema(
        load_schema_from_path(str(SCHEMA_PATH)), query, mutation, order, money, datetime_scalar
    )
