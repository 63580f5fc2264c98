"""OpenAI-compatible upstream model: ``POST {base_url}/chat/completions`` with ``stream: true``,
relayed delta by delta (httpx, async, one pooled client per process; no thread per stream).

Failures become domain errors: connection refused, non-2xx, malformed stream → UpstreamFailed
(502); connect/read timeouts → UpstreamTimeout (504). Nothing of the upstream's error body or
the key is passed on to callers."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx

from services.shared.errors import UpstreamFailed, UpstreamTimeout

log = logging.getLogger("petstore.upstream")


MAX_LINE_BYTES = 64 * 1024
"""Longest SSE line accepted from the upstream (a delta event is a few hundred bytes): a longer
one, or one that never ends, fails the stream instead of growing a buffer without bound."""


class OpenAICompatibleModel:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        timeout_seconds: float = 30.0,
        max_line_bytes: int = MAX_LINE_BYTES,
    ) -> None:
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._max_line = max_line_bytes
        self._client = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, 5.0)),
            limits=httpx.Limits(max_connections=500, max_keepalive_connections=50),
        )

    async def stream(
        self,
        model: str,
        messages: list[dict[str, str]],
        *,
        max_tokens: int | None,
        temperature: float | None,
        user: str | None,
    ) -> AsyncIterator[list[str]]:
        """The upstream's content deltas, in order; the ones that arrived in one network read
        come as one list (they are relayed in one write, each still its own chunk)."""
        body: dict[str, Any] = {"model": model, "messages": messages, "stream": True}
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if temperature is not None:
            body["temperature"] = temperature
        if user is not None:
            body["user"] = user
        try:
            async with self._client.stream("POST", self._url, json=body) as response:
                if response.status_code != 200:
                    log.warning("upstream answered %s", response.status_code)
                    raise UpstreamFailed(
                        f"The language model service answered {response.status_code}."
                    )
                pending = b""
                async for data in response.aiter_bytes():
                    *lines, pending = (pending + data).split(b"\n")
                    if len(pending) > self._max_line or any(
                        len(line) > self._max_line for line in lines
                    ):
                        log.warning("upstream sent a line over %s bytes", self._max_line)
                        raise UpstreamFailed(
                            "The language model service sent a line longer than "
                            f"{self._max_line} bytes."
                        )
                    pieces, done, failure = _pieces(lines)
                    if pieces:
                        yield pieces
                    if failure:
                        raise failure
                    if done:
                        return
                pieces, _, failure = _pieces([pending])
                if pieces:
                    yield pieces
                if failure:
                    raise failure
        except httpx.TimeoutException as exc:
            log.warning("upstream timed out: %s", type(exc).__name__)
            raise UpstreamTimeout("The language model service did not answer in time.") from exc
        except httpx.HTTPError as exc:
            log.warning("upstream unreachable: %s", type(exc).__name__)
            raise UpstreamFailed("The language model service could not be reached.") from exc

    async def close(self) -> None:
        await self._client.aclose()


def _pieces(lines: list[bytes]) -> tuple[list[str], bool, UpstreamFailed | None]:
    """Content deltas of complete SSE lines, whether ``[DONE]`` was among them, and the failure
    that ended them early (the pieces before it are still relayed)."""
    pieces: list[str] = []
    for raw in lines:
        line = raw.strip()
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            return pieces, True, None
        try:
            piece = _delta(data)
        except UpstreamFailed as failure:
            return pieces, False, failure
        if piece:
            pieces.append(piece)
    return pieces, False, None


def _delta(data: bytes) -> str | None:
    try:
        event = json.loads(data)
    except ValueError as exc:
        raise UpstreamFailed("The language model service sent a malformed stream.") from exc
    if not isinstance(event, dict):
        raise UpstreamFailed("The language model service sent a malformed stream.")
    if event.get("error"):
        raise UpstreamFailed("The language model service reported an error.")
    choices = event.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        return None
    delta = choices[0].get("delta") or {}
    content = delta.get("content") if isinstance(delta, dict) else None
    return content if isinstance(content, str) else None
