"""Handlers are wrapped once per operation (web/operations.py), and each request still gets its
own parameters: if a Connexion upgrade stops the prepared operations from applying, or they
start sharing one request's arguments with the next, these fail."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.conftest import Api
from web.operations import PreparedApi, PreparedOperation


def test_every_operation_is_prepared(app: Any, api: Api) -> None:
    assert api.request("GET", "/pets?limit=1").status_code == 200  # the stack is built
    apis = app._middleware_app.apis
    assert {type(a) for path in ("/v1", "/v1/admin") for a in apis[path]} == {PreparedApi}
    operations = [o for a in apis["/v1"] for o in a.operations.values()]
    assert len(operations) >= 25
    assert all(isinstance(o, PreparedOperation) for o in operations)
    listed = next(o for o in operations if o.operation_id.endswith(".listPets"))
    assert listed.fn is listed.fn  # built once, kept


def test_concurrent_requests_keep_their_own_arguments(app: Any, api: Api) -> None:
    token = api.admin_token()
    pets = {name: api.create_pet(token, name=name) for name in ("Ada", "Bo", "Cy", "Di")}
    headers = api.headers()

    async def fetch_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await asyncio.gather(
                *(c.get(f"/v1/pets/{pet['id']}", headers=headers) for pet in pets.values()
                  for _ in range(5))
            )  # fmt: skip

    answers = asyncio.run(fetch_all())
    expected = [name for name in pets for _ in range(5)]
    assert [r.json()["name"] for r in answers] == expected
