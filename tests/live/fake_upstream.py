"""A small OpenAI-compatible server for the upstream tests (a real HTTP server under uvicorn).

It streams a reply that reports what it was sent, so tests can check that the retrieval context
reached it. The last user message picks a behaviour: ``#fail`` → 500, ``#slow`` → answers after
5 s, ``#break`` → three good chunks, then a malformed one; ``#leak`` → recites its system
message; ``#leakfirst`` → recites it in its first write; ``#hugeline`` → one 200 kB event."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

KEY = "upstream-test-key"


def _chunk(content: str) -> bytes:
    event = {
        "id": "up-1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "upstream-model",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}],
    }
    return b"data: " + json.dumps(event).encode() + b"\n\n"


def _report(body: dict[str, Any]) -> str:
    messages = body["messages"]
    system = [m["content"] for m in messages if m["role"] == "system"]
    cited = re.findall(r"^\[\d+\] ([^(]+) \(", system[0], re.M) if system else []
    links = re.findall(r"https?://\S+/pets/[0-9a-f-]+", system[0]) if system else []
    return (
        f"model={body['model']} systems={len(system)} turns={len(messages) - len(system)} "
        f"max_tokens={body.get('max_tokens')} user={body.get('user')} "
        f"sections={'|'.join(c.strip() for c in cited)} "
        f"pets={' '.join(links)} prompt_starts={system[0][:20] if system else ''!r}"
    )


async def completions(request: Request) -> Response:
    if request.headers.get("authorization") != f"Bearer {KEY}":
        return JSONResponse({"error": {"message": "bad key"}}, status_code=401)
    body = await request.json()
    last = body["messages"][-1]["content"]
    if "#fail" in last:
        return JSONResponse({"error": {"message": "upstream exploded"}}, status_code=500)
    if "#slow" in last:
        await asyncio.sleep(5)

    async def stream() -> AsyncIterator[bytes]:
        if "#leakfirst" in last:  # the instructions recited in the very first write
            yield _chunk("Sure! " + body["messages"][0]["content"][:200])
            yield b"data: [DONE]\n\n"
            return
        if "#leak" in last:  # a model that recites its instructions, word by word
            for word in re.findall(r"\S+\s*", "Sure! " + body["messages"][0]["content"]):
                yield _chunk(word)
                await asyncio.sleep(0.001)
            yield b"data: [DONE]\n\n"
            return
        if "#hugeline" in last:  # one well-formed event far longer than any delta
            yield _chunk("x" * 200_000)
            yield b"data: [DONE]\n\n"
            return
        if "#break" in last:  # good chunks and the bad one in a single write
            yield b"".join(_chunk(w) for w in ("one ", "two ", "three ")) + b"data: {not json\n\n"
            return
        yield _chunk("").replace(b'"content": ""', b'"role": "assistant"')
        for word in re.findall(r"\S+\s*", _report(body)):
            yield _chunk(word)
            await asyncio.sleep(0.002)
        yield b"data: [DONE]\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream")


def create_app() -> Starlette:
    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])
