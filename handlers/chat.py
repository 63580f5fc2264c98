"""Chat operations (tag Chat): OpenAI-compatible chat completions, JSON or Server-Sent Events."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import Response, StreamingResponse

from handlers._context import api_base, container, json_response, principal
from schemas.chat import (
    SSE_DONE,
    ChunkEncoder,
    dump_chunk,
    dump_completion,
    dump_stream_error,
    dump_usage_chunk,
    sse,
)
from services.chat import Answer, ChatMessage, ChatRequest
from services.shared.errors import DomainError, UpstreamTimeout

log = logging.getLogger("petstore.chat")
EVENT_STREAM = "text/event-stream"
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def create_chat_completion(body: dict[str, Any]) -> Response:
    request = ChatRequest(
        model=body["model"],
        messages=tuple(ChatMessage(m["role"], m["content"]) for m in body["messages"]),
        max_tokens=body.get("max_tokens"),
        temperature=body.get("temperature"),
        user=body.get("user"),
    )
    answer = await container().chat.start(principal(), request, api_base())
    if not body.get("stream"):
        text = await answer.text()  # citations and links are known once the text is
        return json_response(dump_completion(answer, text))
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    return StreamingResponse(
        _events(answer, include_usage), media_type=EVENT_STREAM, headers=STREAM_HEADERS
    )


async def _events(answer: Answer, include_usage: bool) -> AsyncIterator[bytes]:
    """chat.completion.chunk events: the role first, one event per piece, the finish reason,
    optionally the usage, then ``[DONE]``. The role chunk is written on its own before the
    answer is asked for anything (the embedded answerer retrieves and composes after it, so the
    first byte does not wait for them); pieces that are ready together leave in one write.
    Runs on the event loop (no thread per stream); a client that goes away cancels it, which
    closes the answer and stops generation."""
    yield sse(dump_chunk(answer, {"role": "assistant", "content": ""}))
    encode = ChunkEncoder(answer).content
    try:
        async for batch in answer.batches():
            yield b"".join([encode(piece) for piece in batch])
    except DomainError as exc:
        code = "gateway_timeout" if isinstance(exc, UpstreamTimeout) else "bad_gateway"
        yield sse(dump_stream_error(exc.detail, "upstream_error", code))
        return
    except Exception:
        log.exception("chat stream failed")
        yield sse(dump_stream_error("An unexpected error occurred.", "server_error", "internal"))
        return
    tail = sse(dump_chunk(answer, {}, answer.finish_reason))
    if include_usage:
        tail += sse(dump_usage_chunk(answer))
    yield tail + SSE_DONE
