"""A small GraphQL-over-HTTP client for tests: POST {query, variables} as JSON, read the
``data`` and ``errors`` back. Works with the app's test client and with httpx against a live
server alike (both are httpx clients)."""

from __future__ import annotations

from typing import Any

PET_FIELDS = """
  id name species breed ageMonths size gender goodWithKids goodWithPets price currency
  description status photos tenantId createdAt updatedAt
"""


class GraphQLResult:
    def __init__(self, response: Any) -> None:
        self.response = response
        self.status = response.status_code
        body = response.json()
        self.data: dict[str, Any] | None = body.get("data")
        self.errors: list[dict[str, Any]] = body.get("errors") or []

    @property
    def codes(self) -> list[str]:
        return [e.get("extensions", {}).get("code") for e in self.errors]

    @property
    def fields(self) -> list[str]:
        return [f["field"] for e in self.errors for f in e.get("extensions", {}).get("errors", [])]

    def ok(self) -> dict[str, Any]:
        assert self.status == 200, (self.status, self.errors)
        assert not self.errors, self.errors
        assert self.data is not None
        return self.data


def graphql(
    client: Any,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    url: str = "/v1/graphql",
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> GraphQLResult:
    sent = dict(headers or {})
    if token:
        sent["Authorization"] = f"Bearer {token}"
    body: dict[str, Any] = {"query": query}
    if variables is not None:
        body["variables"] = variables
    return GraphQLResult(client.post(url, json=body, headers=sent))
