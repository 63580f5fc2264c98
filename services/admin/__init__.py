"""The Admin API's use cases (shelter staff): the dashboard, user management and order
management. Every use case takes a Principal and requires the ``admin`` scope itself
(``require_admin``), whichever protocol carried the call; each reads and writes the caller's
tenant only."""

from __future__ import annotations

from services.shared.principal import ADMIN_SCOPE, Principal, require_scope


def require_admin(principal: Principal) -> None:
    """No token: AuthenticationFailed (401); a token without the admin scope: Forbidden (403)."""
    require_scope(principal, ADMIN_SCOPE)
