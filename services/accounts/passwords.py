"""Password hashing with argon2id (argon2-cffi defaults, RFC 9106 low-memory profile).

Each hash or check costs ~180 ms of CPU and 64 MiB of memory here, so it runs off the event loop
and at most ``MAX_CONCURRENT_HASHES`` run at once per process: 45 parallel logins without that
bound raised peak RSS from ~90 MB to ~485 MB (measured in review)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from functools import cache
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

T = TypeVar("T")
MAX_CONCURRENT_HASHES = 4

_hasher = PasswordHasher()
_slots = threading.BoundedSemaphore(MAX_CONCURRENT_HASHES)


@cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so that an unknown user and a wrong
    password cost the same time (no user enumeration by timing)."""
    return _hasher.hash("dummy-password-for-timing")


def _bounded(fn: Callable[[], T]) -> T:
    with _slots:
        return fn()


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_bounded, lambda: _hasher.hash(password))


async def verify_password(password_hash: str | None, password: str) -> bool:
    def _verify() -> bool:
        try:
            return (
                _hasher.verify(password_hash or _dummy_hash(), password)
                and password_hash is not None
            )
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(_bounded, _verify)
