"""Chat answers → #/components/schemas/ChatCompletion, ChatCompletionChunk (OpenAI's shapes)
and the Server-Sent Events framing of the stream."""

from __future__ import annotations

from typing import Any

import orjson

from services.chat import Answer


def usage(answer: Answer) -> dict[str, int]:
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
    }


def dump_completion(answer: Answer, text: str) -> dict[str, Any]:
    return {
        "id": answer.id,
        "object": "chat.completion",
        "created": answer.created,
        "model": answer.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": answer.finish_reason,
            }
        ],
        "usage": usage(answer),
        "citations": list(answer.citations),
        "pet_links": list(answer.pet_links),
    }


def dump_chunk(
    answer: Answer, delta: dict[str, str], finish_reason: str | None = None
) -> dict[str, Any]:
    return {
        "id": answer.id,
        "object": "chat.completion.chunk",
        "created": answer.created,
        "model": answer.model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


class ChunkEncoder:
    """``sse(dump_chunk(answer, {"content": piece}))`` byte for byte, with the constant parts
    encoded once per answer (a streamed answer has hundreds of pieces)."""

    def __init__(self, answer: Answer) -> None:
        head = orjson.dumps(dump_chunk(answer, {"content": ""}))
        prefix, _, suffix = head.partition(b'"content":""')
        self._prefix = b"data: " + prefix + b'"content":'
        self._suffix = suffix + b"\n\n"

    def content(self, piece: str) -> bytes:
        return self._prefix + orjson.dumps(piece) + self._suffix


def dump_usage_chunk(answer: Answer) -> dict[str, Any]:
    """OpenAI's ``stream_options.include_usage``: a last chunk with no choices and the usage."""
    return {
        "id": answer.id,
        "object": "chat.completion.chunk",
        "created": answer.created,
        "model": answer.model,
        "choices": [],
        "usage": usage(answer),
    }


def dump_stream_error(message: str, kind: str, code: str) -> dict[str, Any]:
    """A failure after the stream has started (its 200 is already sent): the OpenAI ``error``
    object, which the official SDK turns into an ``openai.APIError``."""
    return {"error": {"message": message, "type": kind, "code": code, "param": None}}


def sse(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"
