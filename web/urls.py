"""The base of the URLs the API hands out, for every protocol that renders links."""

from __future__ import annotations

from settings import API_PREFIX, Settings


def api_base(settings: Settings, scheme: str, netloc: str) -> str:
    """PETSTORE_PUBLIC_URL when set (recommended behind a proxy or cache), else the request's
    scheme and Host (syntax checked by web.middleware.RequestGuard), plus the API prefix."""
    if settings.public_url:
        return f"{settings.public_url}{API_PREFIX}"
    return f"{scheme}://{netloc}{API_PREFIX}"
