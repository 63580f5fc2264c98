"""The base of the URLs the API hands out, for every protocol that renders links."""

from __future__ import annotations

from typing import Any

from settings import API_PREFIX, Settings


def api_base(settings: Settings, scheme: str, netloc: str) -> str:
    """PETSTORE_PUBLIC_URL when set (recommended behind a proxy or cache), else the request's
    scheme and Host (syntax checked by web.middleware.RequestGuard), plus the API prefix."""
    if settings.public_url:
        return f"{settings.public_url}{API_PREFIX}"
    return f"{scheme}://{netloc}{API_PREFIX}"


def scope_api_base(settings: Settings, scope: Any) -> str:
    """``api_base`` for an ASGI scope: the Host header as sent (as Starlette's ``request.url``
    takes it, without building the whole URL), else the server's address."""
    host = next((v for k, v in scope["headers"] if k == b"host"), None)
    if host is not None:
        netloc = host.decode("latin-1")
    else:
        address, port = scope.get("server") or ("127.0.0.1", 80)
        default = {"http": 80, "https": 443}.get(scope["scheme"])
        netloc = address if port == default else f"{address}:{port}"
    return api_base(settings, scope["scheme"], netloc)
