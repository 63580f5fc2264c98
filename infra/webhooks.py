"""HTTP sender for webhook deliveries (httpx): connects to the address the URL policy checked
(the host name goes in ``Host`` and TLS SNI/certificate checks), follows no redirects, and
reads no response body (a receiver cannot make us download anything)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit, urlunsplit

import httpx

from services.webhooks.delivery import DeliveryFailed


class HttpSender:
    def __init__(self) -> None:
        self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False)

    async def post(
        self, url: str, address: str, body: bytes, headers: dict[str, str], timeout_seconds: float
    ) -> int:
        parts = urlsplit(url)
        host = parts.hostname or ""
        literal = f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
        netloc = f"{literal}:{parts.port}" if parts.port else literal
        pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        request_headers = {**headers, "Host": parts.netloc.rsplit("@", 1)[-1]}
        try:
            async with self._client.stream(
                "POST",
                pinned,
                content=body,
                headers=request_headers,
                timeout=timeout_seconds,
                extensions={"sni_hostname": host},
            ) as response:
                return response.status_code
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        await self._client.aclose()
