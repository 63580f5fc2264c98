"""protocols/oauth/bridge.call: a page's thread waits for a service call on the event loop at
most CALL_DEADLINE_SECONDS; past it the call is cancelled and TimeoutError raised, so a stuck
call cannot hold the pages' thread pool forever."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from protocols.oauth import bridge


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    running = asyncio.new_event_loop()
    thread = threading.Thread(target=running.run_forever, daemon=True)
    thread.start()
    yield running
    running.call_soon_threadsafe(running.stop)
    thread.join(5)
    running.close()


def _context(loop: asyncio.AbstractEventLoop) -> Any:
    return bridge.RequestContext(loop, None, None, None, None)  # type: ignore[arg-type]


def test_a_call_returns_its_result(loop: asyncio.AbstractEventLoop) -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    bridge.CURRENT.set(_context(loop))
    assert bridge.call(answer()) == 42


def test_a_stuck_call_is_cancelled_at_the_deadline(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bridge, "CALL_DEADLINE_SECONDS", 0.2)
    cancelled = threading.Event()

    async def stuck() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    bridge.CURRENT.set(_context(loop))
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        bridge.call(stuck())
    assert time.monotonic() - started < 5
    assert cancelled.wait(5)
