"""HTTP sender for webhook deliveries (httpx): the reference's envelope, signed, POSTed to the
address the URL policy checked (the host name goes in ``Host`` and TLS SNI/certificate checks);
follows no redirects and reads no response body (a receiver cannot make us download anything).

Signature (documented in the spec, verified by a test with the documented snippet):
``X-Webhook-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>``."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

from schemas.webhooks import dump_envelope
from services.webhooks.delivery import Claimed, DeliveryFailed


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


class HttpSender:
    def __init__(self) -> None:
        self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False)

    async def send(self, delivery: Claimed, address: str, timeout_seconds: float) -> int:
        body = orjson.dumps(dump_envelope(delivery))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Petstore-Webhooks/1.0",
            "X-Webhook-Id": str(delivery.event_id),
            "X-Webhook-Event": delivery.event_type,
            "X-Webhook-Delivery": str(delivery.id),
            "X-Webhook-Signature": sign(delivery.secret, int(time.time()), body),
        }
        return await self.post(delivery.url, address, body, headers, timeout_seconds)

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
