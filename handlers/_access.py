"""Who is asking about an order: a bearer token (optional on order operations) or the order's
guest token (X-Order-Token)."""

from __future__ import annotations

from connexion import request

from handlers._context import container, header_tenant, principal
from services.orders import orders as service
from services.shared.errors import AuthenticationFailed, Forbidden
from services.shared.principal import Principal


async def caller() -> Principal:
    """Order operations allow callers without a bearer token, but a token that is sent must be
    valid: Connexion's optional security would otherwise quietly treat a bad token (401) or one
    without the operation's scope (403) as no token at all."""
    who = principal()
    header = request.headers.get("authorization")
    if who.is_authenticated or not header:
        return who
    # Connexion dropped the token: either it is not valid (AuthenticationFailed here) or it
    # lacks the operation's scope.
    await container().auth.principal(header, header_tenant(), request.scope)
    raise Forbidden("The token does not carry the scope this operation requires.")


async def order_access() -> service.OrderAccess:
    """Owner, admin or guest: a bearer token, or the order's X-Order-Token."""
    who = await caller()
    guest_token = request.headers.get("x-order-token")
    if not who.is_authenticated and not guest_token:
        raise AuthenticationFailed("Send a bearer token, or the order's X-Order-Token.")
    return service.OrderAccess(who, guest_token)
