"""GraphQL at /v1/graphql (ariadne, schema-first: spec/schema.graphql is the contract): a thin
adapter over the same services, schemas and error table as REST."""

from protocols.graphql_api.asgi import GRAPHQL_PATH, GraphQLMiddleware

__all__ = ["GRAPHQL_PATH", "GraphQLMiddleware"]
