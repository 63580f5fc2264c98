"""From the Flask pages (sync, in one of a2wsgi's threads) to the async services (on the
server's event loop) and back.

The ASGI side (protocols.oauth.asgi) puts the request's event loop, container and origin in a
context variable before handing the request to a2wsgi, which copies the context into its
worker thread; ``call`` then runs a coroutine on that loop and waits for it. The thread waits,
the loop does not: a unit of work still hops to the database's own threads as it does for REST.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from services.shared.principal import Principal
from web.container import Container

T = TypeVar("T")


@dataclass(frozen=True)
class RequestContext:
    loop: asyncio.AbstractEventLoop
    container: Container
    origin: Principal  # anonymous, with the client's address and user agent (audit, budgets)
    authorization: str | None
    tenant_header: str | None


CURRENT: contextvars.ContextVar[RequestContext] = contextvars.ContextVar("petstore_oauth")


def current() -> RequestContext:
    return CURRENT.get()


CALL_DEADLINE_SECONDS = 30.0
"""The longest a page's thread waits for one service call (a stuck database must not hold the
thread pool forever): past it the call is cancelled and the page answers 500."""


def call(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the request's event loop and return its result (or raise its error;
    TimeoutError, the call cancelled, past ``CALL_DEADLINE_SECONDS``)."""
    future = asyncio.run_coroutine_threadsafe(coro, current().loop)
    try:
        return future.result(timeout=CALL_DEADLINE_SECONDS)
    except concurrent.futures.TimeoutError:
        future.cancel()
        raise
