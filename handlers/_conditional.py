"""Conditional reads (ETag / If-None-Match → 304) for the cached catalogue reads.

A list's or the inventory's ETag is derived from the tenant's read-cache version (bumped by
every write that changes a pet), the normalized query and the API base its links are built on,
so a 304 costs one version lookup and no database work. A pet's ETag stays its own version
(``"<id>-<version>"``), the one If-Match takes on writes.

The body depends on the caller's tenant, chosen by the token or X-Tenant-ID: ``Vary`` names
both. ``no-cache``: any cache must revalidate (a 304 is cheap), never serve a stale copy."""

from __future__ import annotations

import hashlib
from collections.abc import Hashable

VARY = "Authorization, X-Tenant-ID"
PUBLIC = "no-cache"
PRIVATE = "private, no-cache"  # the inventory needs a token: no shared cache keeps it


def derived_etag(tenant: str, version: str, key: Hashable, api_base: str) -> str:
    digest = hashlib.blake2b(repr((tenant, version, key, api_base)).encode(), digest_size=12)
    return f'W/"{digest.hexdigest()}"'


def cache_headers(tag: str | None, control: str = PUBLIC) -> dict[str, str]:
    headers = {"Cache-Control": control, "Vary": VARY}
    if tag is not None:
        headers["ETag"] = tag
    return headers


def tag_matches(header: str | None, tag: str) -> bool:
    """Whether an If-None-Match value names ``tag`` (weak comparison, RFC 9110 13.1.2) or is
    ``*``."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    opaque = tag.removeprefix("W/")
    return any(t.strip().removeprefix("W/") == opaque for t in header.split(","))
