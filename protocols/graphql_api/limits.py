"""What a query may cost before it runs: nesting depth (introspection included) and a
complexity budget in which list fields count ``first`` times. Both are validation rules, so a
refused query never reaches a resolver; the body-size limit is web.middleware.RequestGuard's.

Parsing and validation cost more than resolving a small query (measured in-process: ~15 of
~20 ms for get-pet). Clients send the same documents over and over, so both are cached per query
text (bounded); only the cost rule, which depends on the variables, runs on every request."""

from __future__ import annotations

from collections import OrderedDict
from functools import lru_cache
from typing import Any

from ariadne.validation import cost_validator
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    parse,
    validate,
)
from graphql.validation import ASTValidationRule, MaxIntrospectionDepthRule

QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"

COST_MAP: dict[str, dict[str, Any]] = {
    # Lists cost their page size; what is loaded per item (an order's pet) costs per item.
    "Query": {
        "pets": {"complexity": 1, "multipliers": ["first"]},
        "myOrders": {"complexity": 1, "multipliers": ["first"]},
    },
    "Order": {"pet": {"complexity": 1}},
}


def depth_limit(max_depth: int) -> type[ASTValidationRule]:
    class DepthLimit(ASTValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            depth = self._depth(node.selection_set, 0, frozenset())
            if depth > max_depth:
                self.report_error(
                    GraphQLError(
                        f"The query is {depth} levels deep; the limit is {max_depth}.",
                        node,
                        extensions={"code": QUERY_TOO_COMPLEX},
                    )
                )

        def _depth(
            self, selections: SelectionSetNode | None, level: int, seen: frozenset[str]
        ) -> int:
            if selections is None:
                return level
            deepest = level
            for selection in selections.selections:
                if isinstance(selection, FieldNode):
                    below = self._depth(selection.selection_set, level + 1, seen)
                elif isinstance(selection, InlineFragmentNode):
                    below = self._depth(selection.selection_set, level, seen)
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    fragment = self.context.get_fragment(name)
                    if name in seen or fragment is None:
                        continue  # cycles and unknown fragments: the standard rules report them
                    below = self._depth(fragment.selection_set, level, seen | {name})
                else:
                    continue
                deepest = max(deepest, below)
            return deepest

    return DepthLimit


def validation_rules(
    max_depth: int, max_cost: int
) -> Any:  # ariadne.types.ValidationRules (a callable per request)
    depth = depth_limit(max_depth)

    def rules(
        _context: Any, _document: DocumentNode, data: dict[str, Any]
    ) -> list[type[ASTValidationRule]]:
        variables = data.get("variables") if isinstance(data, dict) else None
        base: Any = cost_validator(
            maximum_cost=max_cost,
            default_cost=1,
            variables=variables if isinstance(variables, dict) else None,
            cost_map=COST_MAP,
        )

        class Cost(base):  # type: ignore[misc, valid-type]
            per_request = True  # depends on the variables: never cached

            def get_cost_exceeded_error(self) -> GraphQLError:
                error: GraphQLError = super().get_cost_exceeded_error()
                extensions = {**(error.extensions or {}), "code": QUERY_TOO_COMPLEX}
                return GraphQLError(error.message, extensions=extensions)

        return [depth, MaxIntrospectionDepthRule, Cost]

    return rules


CACHE_SIZE = 512


def parse_query(max_tokens: int) -> Any:  # ariadne.types.QueryParser
    """graphql-core's parser with a token budget, cached per query text (the executor does not
    change documents); a document nested deeper than Python's stack is a GraphQL error, not a
    crash."""

    @lru_cache(maxsize=CACHE_SIZE)
    def parse_text(text: str) -> DocumentNode:
        try:
            return parse(text, max_tokens=max_tokens)
        except RecursionError:
            raise GraphQLError(
                "The query is nested too deeply.", extensions={"code": QUERY_TOO_COMPLEX}
            ) from None

    def parser(_context: Any, data: dict[str, Any]) -> DocumentNode:
        return parse_text(data["query"])

    return parser


class CachedValidator:
    """ariadne ``query_validator``: graphql-core's ``validate``, with the verdict of the rules
    that do not depend on the variables remembered per document (the parser hands out the same
    document for the same text); rules marked ``per_request`` run every time."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._verdicts: OrderedDict[int, tuple[DocumentNode, list[GraphQLError]]] = OrderedDict()

    def __call__(
        self,
        schema: GraphQLSchema,
        document_ast: DocumentNode,
        rules: Any = None,
        max_errors: int | None = None,
        type_info: Any = None,
    ) -> list[GraphQLError]:
        every = list(rules or ())
        per_request = [r for r in every if getattr(r, "per_request", False)]
        static = [r for r in every if r not in per_request]
        key = id(document_ast)
        seen = self._verdicts.get(key)
        if seen is not None and seen[0] is document_ast:
            self._verdicts.move_to_end(key)
            errors = seen[1]
        else:
            errors = validate(schema, document_ast, static, max_errors=max_errors)
            self._verdicts[key] = (document_ast, errors)  # keeps the document, so its id
            if len(self._verdicts) > self.size:
                self._verdicts.popitem(last=False)
        if errors or not per_request:
            return errors
        return validate(schema, document_ast, per_request, max_errors=max_errors)
