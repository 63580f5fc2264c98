"""What a query may cost before it runs: nesting depth (introspection included) and a
complexity budget in which list fields count ``first`` times. Both are validation rules, so a
refused query never reaches a resolver; the body-size limit is web.middleware.RequestGuard's."""

from __future__ import annotations

from typing import Any

from ariadne.validation import cost_validator
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    parse,
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
            def get_cost_exceeded_error(self) -> GraphQLError:
                error: GraphQLError = super().get_cost_exceeded_error()
                extensions = {**(error.extensions or {}), "code": QUERY_TOO_COMPLEX}
                return GraphQLError(error.message, extensions=extensions)

        return [depth, MaxIntrospectionDepthRule, Cost]

    return rules


def parse_query(max_tokens: int) -> Any:  # ariadne.types.QueryParser
    """graphql-core's parser with a token budget; a document nested deeper than Python's stack
    is a GraphQL error, not a crash."""

    def parser(_context: Any, data: dict[str, Any]) -> DocumentNode:
        try:
            return parse(data["query"], max_tokens=max_tokens)
        except RecursionError:
            raise GraphQLError(
                "The query is nested too deeply.", extensions={"code": QUERY_TOO_COMPLEX}
            ) from None

    return parser
