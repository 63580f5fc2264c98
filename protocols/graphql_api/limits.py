"""What a query may cost before it runs: nesting depth (introspection included) and a
complexity budget in which list fields count ``first`` times. Both are validation rules, so a
refused query never reaches a resolver; the body-size limit is web.middleware.RequestGuard's.

Parsing and validation cost more than resolving a small query (in-process get-pet: 28 ms
uncached, 5.5 ms cached; README "Measured decisions"). Clients send the same documents over and
over, so both are cached per query text (bounded), the verdict also per the values of the
variables the cost depends on."""

from __future__ import annotations

from collections import OrderedDict
from functools import lru_cache
from typing import Any

import orjson
from ariadne.validation import cost_validator
from graphql import (
    ArgumentNode,
    DocumentNode,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    Visitor,
    parse,
    validate,
    value_from_ast_untyped,
    visit,
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
        def __init__(self, context: Any) -> None:
            super().__init__(context)
            # Each fragment's own depth, measured once: re-walking a fragment at every spread
            # would make a document of doubling spreads (F1 spreads F2 twice, F2 F3 twice, ...)
            # cost 2^n walks.
            self.fragment_depths: dict[str, int] = {}

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
            if selections is None or level > max_depth:
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
                    if name not in self.fragment_depths:
                        self.fragment_depths[name] = self._depth(
                            fragment.selection_set, 0, seen | {name}
                        )
                    below = level + self.fragment_depths[name]
                else:
                    continue
                deepest = max(deepest, below)
            return deepest

    return DepthLimit


MULTIPLIER_ARGUMENTS = frozenset({"first"})  # the arguments COST_MAP multiplies by


class _MultiplierVariables(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_argument(self, node: ArgumentNode, *_: Any) -> None:
        if node.name.value in MULTIPLIER_ARGUMENTS and isinstance(node.value, VariableNode):
            self.names.add(node.value.name.value)


def multiplier_variables(document: DocumentNode) -> tuple[str, ...]:
    """The variables a document's cost depends on (those passed as ``first``)."""
    found = _MultiplierVariables()
    visit(document, found)
    return tuple(sorted(found.names))


def defaults(document: DocumentNode) -> dict[str, Any]:
    """The operations' variable defaults (``query($n: Int = 100)``): execution uses them when a
    variable is not sent, so the cost must be judged with them too."""
    found: dict[str, Any] = {}
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            for variable in definition.variable_definitions or ():
                if variable.default_value is not None:
                    name = variable.variable.name.value
                    found[name] = value_from_ast_untyped(variable.default_value)
    return found


def validation_rules(
    max_depth: int, max_cost: int
) -> Any:  # ariadne.types.ValidationRules (a callable per request)
    depth = depth_limit(max_depth)
    seen: OrderedDict[int, tuple[DocumentNode, tuple[str, ...]]] = OrderedDict()

    def cost_variables(document: DocumentNode) -> tuple[str, ...]:
        known = seen.get(id(document))
        if known is None or known[0] is not document:
            known = (document, multiplier_variables(document))
            seen[id(document)] = known  # keeps the document, so its id
            if len(seen) > CACHE_SIZE:
                seen.popitem(last=False)
        return known[1]

    def rules(
        _context: Any, document: DocumentNode, data: dict[str, Any]
    ) -> list[type[ASTValidationRule]]:
        raw = data.get("variables") if isinstance(data, dict) else None
        variables = {**defaults(document), **(raw if isinstance(raw, dict) else {})}
        base: Any = cost_validator(
            maximum_cost=max_cost, default_cost=1, variables=variables, cost_map=COST_MAP
        )
        names = cost_variables(document)

        class Cost(base):  # type: ignore[misc, valid-type]
            # The verdict depends on the document and on these variables' values only.
            cache_key = tuple((n, orjson.dumps(variables.get(n))) for n in names)

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
    """ariadne ``query_validator``: graphql-core's ``validate``, its verdict remembered per
    document (the parser hands out the same document for the same text) and per the
    ``cache_key`` of the rules that depend on the variables (the cost rule: the values passed
    as ``first``). Bounded, least recently used first out."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._verdicts: OrderedDict[tuple[Any, ...], tuple[DocumentNode, list[GraphQLError]]] = (
            OrderedDict()
        )

    def __call__(
        self,
        schema: GraphQLSchema,
        document_ast: DocumentNode,
        rules: Any = None,
        max_errors: int | None = None,
        type_info: Any = None,
    ) -> list[GraphQLError]:
        every = list(rules or ())
        key = (id(document_ast), *(getattr(r, "cache_key", ()) for r in every))
        seen = self._verdicts.get(key)
        if seen is not None and seen[0] is document_ast:
            self._verdicts.move_to_end(key)
            return seen[1]
        fixed = [r for r in every if not hasattr(r, "cache_key")]
        varying = [r for r in every if hasattr(r, "cache_key")]  # judged once the rest pass
        errors = validate(schema, document_ast, fixed, max_errors=max_errors)
        if varying and not errors:
            errors = validate(schema, document_ast, varying, max_errors=max_errors)
        self._verdicts[key] = (document_ast, errors)  # keeps the document, so its id
        if len(self._verdicts) > self.size:
            self._verdicts.popitem(last=False)
        return errors
