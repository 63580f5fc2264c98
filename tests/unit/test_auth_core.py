"""auth/principals.py, the one place credentials become a Principal, and protocols/errors.py, the
one error table: what every protocol adapter relies on, tested without any protocol."""

from __future__ import annotations

import inspect
import uuid
from typing import Any

import pytest

from auth.keys import key_ring
from auth.principals import Authenticator, bind_tenant, client_key
from auth.tokens import TokenService
from protocols import errors as table
from services.accounts import users
from services.accounts.roles import RoleLookup
from services.shared import errors
from services.shared.principal import ROLE_SCOPES
from settings import Settings
from tests.conftest import PASSWORD, run_db


def _register(settings: Settings, tenant: str) -> Any:
    data = users.NewUser(
        username=f"u{uuid.uuid4().hex[:8]}",
        email=f"{uuid.uuid4().hex[:8]}@example.com",
        first_name="A",
        last_name="B",
        password=PASSWORD,
    )
    return run_db(settings, lambda db: users.register(db, tenant, data))


def _scenario(settings: Settings, fn: Any) -> Any:
    """Run ``fn(authenticator, tokens, db)`` with a real role cache on the real database."""
    from models.database import Database

    async def go(db: Database) -> Any:
        tokens = TokenService(key_ring(settings), settings.jwt_issuer, 600)
        return await fn(Authenticator(tokens, RoleLookup(db, 60)), tokens, db)

    return run_db(settings, go)


def test_no_credential_is_an_anonymous_caller_in_the_named_tenant(settings: Settings) -> None:
    async def go(auth: Authenticator, *_: Any) -> None:
        tenant = str(uuid.uuid4())
        who = await auth.principal(None, tenant.upper())
        assert (who.subject, who.tenant, who.scopes) == (None, tenant, frozenset())

    _scenario(settings, go)


@pytest.mark.parametrize("tenant", ["shelter-a", "1" * 41, "550e8400-e29b-41d4-a716-44665544000"])
def test_a_named_tenant_must_be_a_uuid(settings: Settings, tenant: str) -> None:
    async def go(auth: Authenticator, *_: Any) -> None:
        with pytest.raises(errors.InvalidInput) as refused:
            await auth.principal(None, tenant)
        assert [e.field for e in refused.value.errors] == ["X-Tenant-ID"]

    _scenario(settings, go)


@pytest.mark.parametrize(
    "authorization",
    ["Bearer not-a-token", "Basic dXNlcjpwYXNz", "Bearer ", "bearer", "Token abc"],
)
def test_a_credential_that_is_sent_must_be_valid(settings: Settings, authorization: str) -> None:
    async def go(auth: Authenticator, *_: Any) -> None:
        with pytest.raises(errors.AuthenticationFailed):
            await auth.principal(authorization, "")

    _scenario(settings, go)


def test_a_token_names_its_account_role_and_tenant_and_is_bound_to_it(settings: Settings) -> None:
    tenant = str(uuid.uuid4())
    user = _register(settings, tenant)

    async def go(auth: Authenticator, tokens: TokenService, _db: Any) -> None:
        token = tokens.issue(user.id, "user", tenant).token
        who = await auth.principal(f"Bearer {token}", tenant)
        assert (who.subject, who.role, who.tenant) == (user.id, "user", tenant)
        assert who.scopes == ROLE_SCOPES["user"]
        assert (await auth.principal(f"bearer {token}", None)).tenant == tenant
        with pytest.raises(errors.Forbidden):
            await auth.principal(f"Bearer {token}", str(uuid.uuid4()))

    _scenario(settings, go)


def test_a_deleted_account_loses_access_at_once_in_this_process(settings: Settings) -> None:
    tenant = str(uuid.uuid4())
    user = _register(settings, tenant)

    async def go(auth: Authenticator, tokens: TokenService, db: Any) -> None:
        token = tokens.issue(user.id, "user", tenant).token
        assert (await auth.principal(f"Bearer {token}", tenant)).subject == user.id  # now cached
        service = users.UserService(db, None, auth.roles, tokens)  # type: ignore[arg-type]
        who = await auth.principal(f"Bearer {token}", tenant)
        await service.delete(who, user.id)
        with pytest.raises(errors.AuthenticationFailed):
            await auth.principal(f"Bearer {token}", tenant)

    _scenario(settings, go)


def test_a_token_is_verified_once_per_request(settings: Settings) -> None:
    tenant = str(uuid.uuid4())
    user = _register(settings, tenant)

    class Counting(TokenService):
        calls = 0

        def verify(self, token: str) -> dict[str, Any] | None:
            Counting.calls += 1
            return super().verify(token)

    async def go(_auth: Authenticator, _tokens: TokenService, db: Any) -> None:
        tokens = Counting(key_ring(settings), settings.jwt_issuer, 600)
        auth = Authenticator(tokens, RoleLookup(db, 60))
        token = tokens.issue(user.id, "user", tenant).token
        scope: dict[str, Any] = {}  # one request's ASGI scope
        claims = auth.verify(token, scope)
        await auth.principal(f"Bearer {token}", tenant, scope)
        await auth.current_claims(token, scope)
        assert Counting.calls == 1
        assert client_key(claims, "10.0.0.1") == f"sub:{tenant}:{user.id}"
        assert client_key(None, "10.0.0.1") == "ip:10.0.0.1"
        assert client_key(None, "2001:db8::1") == client_key(None, "2001:db8::ffff:1")
        assert client_key(None, "2001:db8::1") == "ip:2001:db8::/64"
        assert client_key(None, "2001:db8:0:1::1") == "ip:2001:db8:0:1::/64"
        assert client_key(None, "::ffff:10.0.0.1") == "ip:10.0.0.1"

    _scenario(settings, go)


def test_bind_tenant_accepts_the_tokens_own_tenant_in_any_case(settings: Settings) -> None:
    from services.shared.principal import Principal

    who = Principal(uuid.uuid4(), "user", ROLE_SCOPES["user"], "shelter-a")
    assert bind_tenant(who, "SHELTER-A") is who
    assert bind_tenant(who, None) is who
    with pytest.raises(errors.Forbidden):
        bind_tenant(who, "shelter-b")


def _domain_errors() -> list[type[errors.DomainError]]:
    return [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.DomainError) and cls is not errors.DomainError
    ]


@pytest.mark.parametrize("cls", _domain_errors(), ids=lambda c: c.__name__)
def test_every_domain_error_has_a_row_in_the_error_table(cls: type) -> None:
    """A new domain error that nobody mapped would be a 500 in every protocol."""
    assert any(base in table.ERRORS for base in cls.__mro__), f"{cls.__name__} is not mapped"


def test_the_table_gives_each_protocol_its_own_form() -> None:
    invalid = errors.InvalidInput([errors.FieldError("name", "too long", "maxLength")])
    codes = table.codes_for(invalid)
    assert (codes.http, codes.graphql, codes.grpc, codes.jsonrpc) == (
        422,
        "BAD_USER_INPUT",
        "INVALID_ARGUMENT",
        -32602,
    )
    assert table.field_errors(invalid) == [
        {"field": "name", "message": "too long", "code": "maxLength"}
    ]
    missing = errors.NotFound("order", "x")
    assert (table.codes_for(missing).http, table.graphql_code(missing)) == (404, "NOT_FOUND")
    assert table.codes_for(errors.UnsafeImage("bad", "corrupt")).http == 422  # nearest base
    assert table.codes_for(RuntimeError("boom")) is table.INTERNAL
    limited = errors.TooManyAttempts(retry_after=30)
    assert (table.graphql_code(limited), table.retry_after(limited)) == ("RATE_LIMITED", 30)
