"""Batched loading: every key asked for while one level of the result is being resolved is
fetched by one call (one SQL statement), then answered from a per-request cache."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BatchLoader(Generic[K, V]):
    """``load(key)`` returns a future; the keys gathered until the event loop's next turn go to
    ``fetch`` together (graphql-core calls the resolvers of a whole list before awaiting any).
    Missing keys resolve to None."""

    def __init__(self, fetch: Callable[[list[K]], Awaitable[Mapping[K, V]]]) -> None:
        self._fetch = fetch
        self._cache: dict[K, asyncio.Future[V | None]] = {}
        self._pending: list[K] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def load(self, key: K) -> asyncio.Future[V | None]:
        found = self._cache.get(key)
        if found is not None:
            return found
        loop = asyncio.get_running_loop()
        future: asyncio.Future[V | None] = loop.create_future()
        self._cache[key] = future
        self._pending.append(key)
        if len(self._pending) == 1:
            loop.call_soon(self._dispatch)
        return future

    def _dispatch(self) -> None:
        keys, self._pending = self._pending, []
        task = asyncio.ensure_future(self._run(keys))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, keys: list[K]) -> None:
        try:
            found = await self._fetch(keys)
        except Exception as exc:  # noqa: BLE001 - every waiter gets the failure, re-raised there
            for key in keys:
                future = self._cache.pop(key)
                if not future.done():
                    future.set_exception(exc)
            return
        for key in keys:
            future = self._cache[key]
            if not future.done():
                future.set_result(found.get(key))
