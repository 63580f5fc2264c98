"""spec/schema.graphql is the contract: every root field it declares has a resolver, and the
limits refuse what they should before anything runs."""

from __future__ import annotations

from typing import Any

from graphql import parse, specified_rules, validate

from protocols.graphql_api.limits import CachedValidator, depth_limit, validation_rules
from protocols.graphql_api.schema import build_schema


def test_every_root_field_of_the_contract_has_a_resolver() -> None:
    schema = build_schema()
    for root in (schema.query_type, schema.mutation_type):
        assert root is not None
        missing = [name for name, field in root.fields.items() if field.resolve is None]
        assert missing == [], f"{root.name} fields without a resolver: {missing}"
    assert schema.get_type("Order").fields["pet"].resolve is not None  # type: ignore[union-attr]


def test_depth_counts_fragments_and_ignores_their_cycles() -> None:
    schema = build_schema()
    deep = parse(
        "query { ...A } fragment A on Query { pets { edges { node { ...B } } } }"
        " fragment B on Pet { id }"
    )
    assert validate(schema, deep, [depth_limit(4)]) == []
    errors = validate(schema, deep, [depth_limit(3)])
    assert [e.extensions["code"] for e in errors] == ["QUERY_TOO_COMPLEX"]  # type: ignore[index]
    cyclic = parse("query { ...A } fragment A on Query { ...A }")
    assert validate(schema, cyclic, [depth_limit(3)]) == []  # NoFragmentCycles reports it


def test_the_validation_verdict_is_cached_per_document_and_cost_variables() -> None:
    schema = build_schema()
    validator = CachedValidator(size=8)
    rules = validation_rules(max_depth=15, max_cost=50)
    listing = parse("query($n: Int, $f: PetFilter) { pets(first: $n, filter: $f) { totalCount } }")
    one = parse("query($id: ID!) { pet(id: $id) { id } }")

    def check(document: Any, variables: dict[str, Any]) -> list[str]:
        extra = rules(None, document, {"variables": variables})
        return [e.message for e in validator(schema, document, (*specified_rules, *extra))]

    assert check(listing, {"n": 10}) == []
    assert check(listing, {"n": 100})  # the cost is judged with the values passed as first
    assert check(listing, {"n": 10, "f": {"name": "x"}}) == []  # other variables do not matter
    assert len(validator._verdicts) == 2
    for pet_id in ("a", "b", "c"):
        assert check(one, {"id": pet_id}) == []
    assert len(validator._verdicts) == 3
