"""Password hashing with argon2id (argon2-cffi defaults, RFC 9106 low-memory profile).

Each hash or check costs ~180 ms of CPU and 64 MiB of memory here, so it runs off the event loop
and at most ``MAX_CONCURRENT_HASHES`` run at once per process: 45 parallel logins without that
bound raised peak RSS from ~90 MB to ~485 MB (measured in review).

The queue in front of them is bounded too (``HASHES``: at most ``capacity`` hashes running or
waiting per process, PETSTORE_PASSWORD_HASH_QUEUE): beyond it a call raises ``Overloaded`` at
once (503 + Retry-After) instead of queueing without end. Every operation that hashes or checks
a password (registration, login, a password change) goes through ``hash_password`` or
``verify_password`` here and so gets the bound; its protocol documents the 503."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from services.shared.errors import Overloaded

T = TypeVar("T")
MAX_CONCURRENT_HASHES = 4
DEFAULT_QUEUE = 16
RETRY_AFTER_SECONDS = 1

_hasher = PasswordHasher()
_slots = threading.BoundedSemaphore(MAX_CONCURRENT_HASHES)


class HashQueue:
    """Admission to password hashing in this process: at most ``capacity`` admitted at once
    (running, or waiting for one of the ``MAX_CONCURRENT_HASHES`` slots). Thread-safe: the
    app's event loop and tools on other loops share it."""

    def __init__(self, capacity: int = DEFAULT_QUEUE) -> None:
        self.capacity = capacity
        self.admitted = 0
        self._lock = threading.Lock()

    def configure(self, capacity: int) -> None:
        """Set the bound (the app factory, from settings)."""
        self.capacity = max(1, capacity)

    @contextmanager
    def ticket(self) -> Iterator[None]:
        """Hold one place in the queue; Overloaded when every place is taken."""
        with self._lock:
            if self.admitted >= self.capacity:
                raise Overloaded(
                    "Too many password checks are in progress. Try again shortly.",
                    retry_after=RETRY_AFTER_SECONDS,
                )
            self.admitted += 1
        try:
            yield
        finally:
            with self._lock:
                self.admitted -= 1


HASHES = HashQueue()


@cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so that an unknown user and a wrong
    password cost the same time (no user enumeration by timing)."""
    return _hasher.hash("dummy-password-for-timing")


def _bounded(fn: Callable[[], T]) -> T:
    with _slots:
        return fn()


async def _run(fn: Callable[[], T]) -> T:
    with HASHES.ticket():
        return await asyncio.to_thread(_bounded, fn)


async def hash_password(password: str) -> str:
    """Raises Overloaded when the hashing queue is full."""
    return await _run(lambda: _hasher.hash(password))


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Raises Overloaded when the hashing queue is full."""

    def _verify() -> bool:
        try:
            return (
                _hasher.verify(password_hash or _dummy_hash(), password)
                and password_hash is not None
            )
        except (VerificationError, InvalidHashError):
            return False

    return await _run(_verify)
