"""The base of the URLs the API hands out, for every protocol that renders links."""

from __future__ import annotations

from settings import Settings


def api_base(settings: Settings, scheme: str, netloc: str) -> str:
    """PETSTORE_PUBLIC_URL when set (recommended behind a proxy or cache), else the request's
    scheme and Host (syntax checked by web.middleware.RequestGuard), plus ``/v1``."""
    if settings.public_url:
        return f"{settings.public_url}/v1"
    return f"{scheme}://{netloc}/v1"
