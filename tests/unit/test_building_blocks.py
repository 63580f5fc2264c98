"""Small pieces with sharp edges: UUID v7, counters, schema conversion, tokens."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import jsonschema_rs
import pytest

from auth.keys import KeyRing, SigningKey, new_private_key
from auth.tokens import TokenService, principal_from_claims
from infra.counters import MemoryCounterStore
from models.base import uuid7
from web.validators import to_jsonschema


def test_uuid7_is_version_7_and_time_ordered() -> None:
    ids = [uuid7() for _ in range(50)]
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert [i.int >> 80 for i in ids] == sorted(i.int >> 80 for i in ids)
    assert len(set(ids)) == 50


def test_memory_counter_window_expires() -> None:
    now = [1000.0]
    store = MemoryCounterStore(clock=lambda: now[0])

    async def go() -> None:
        assert await store.increment("k", 60) == (1, 60)
        assert await store.increment("k", 60) == (2, 60)
        await store.decrement("k")
        await store.decrement("missing")
        assert await store.peek("missing") == (0, 0)
        assert (await store.increment("k", 60))[0] == 2
        now[0] += 30
        assert await store.peek("k") == (2, 30)
        now[0] += 31
        assert await store.peek("k") == (0, 0)
        assert (await store.increment("k", 60))[0] == 1

    asyncio.run(go())


def test_readonly_ignored_in_requests_writeonly_forbidden_in_responses() -> None:
    schema = {
        "type": "object",
        "required": ["id", "name", "secret"],
        "properties": {
            "id": {"type": "string", "format": "uuid", "readOnly": True},
            "name": {"type": "string", "nullable": True},
            "secret": {"type": "string", "writeOnly": True},
        },
    }
    request = jsonschema_rs.Draft4Validator(to_jsonschema(schema, "request"), validate_formats=True)
    response = jsonschema_rs.Draft4Validator(
        to_jsonschema(schema, "response"), validate_formats=True
    )
    assert request.is_valid({"name": None, "secret": "s"})
    assert not request.is_valid({"name": "x"})
    assert response.is_valid({"id": str(uuid.uuid4()), "name": "x"})
    assert not response.is_valid({"id": str(uuid.uuid4()), "name": "x", "secret": "leak"})
    assert not response.is_valid({"id": "not-a-uuid", "name": "x"})


def test_token_scopes_cannot_exceed_the_role() -> None:
    service = TokenService(KeyRing(None, [SigningKey.of(new_private_key())]), "https://issuer", 60)
    issued = service.issue(uuid.uuid4(), "user", "")
    claims = service.verify(issued.token)
    assert claims is not None
    claims["scope"] += " admin write:pets"
    assert "admin" not in principal_from_claims(claims).scopes
    assert service.verify(issued.token + "x") is None
    other = TokenService(KeyRing(None, [SigningKey.of(new_private_key())]), "https://issuer", 60)
    assert other.verify(issued.token) is None


def test_password_hashing_is_bounded_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """No more than MAX_CONCURRENT_HASHES argon2 computations (64 MiB each) run at once."""
    import threading
    import time as _time

    from services.accounts import passwords

    running, peak, lock = 0, 0, threading.Lock()

    class SlowHasher:
        def hash(self, password: str) -> str:
            nonlocal running, peak
            with lock:
                running += 1
                peak = max(peak, running)
            _time.sleep(0.05)
            with lock:
                running -= 1
            return "hashed"

    monkeypatch.setattr(passwords, "_hasher", SlowHasher())

    async def go() -> None:
        await asyncio.gather(*[passwords.hash_password("pw") for _ in range(12)])

    asyncio.run(go())
    assert peak == passwords.MAX_CONCURRENT_HASHES


def test_generated_signing_key_is_kept_and_never_empty(tmp_path: Path) -> None:
    from settings import Settings

    first = Settings.from_env({"PETSTORE_VAR_DIR": str(tmp_path)}).jwt_secret
    again = Settings.from_env({"PETSTORE_VAR_DIR": str(tmp_path)}).jwt_secret
    assert first == again
    assert len(first) >= 48
    assert oct((tmp_path / "jwt-secret").stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in tmp_path.iterdir()] == ["jwt-secret"]
    (tmp_path / "jwt-secret").write_text("")
    with pytest.raises(ValueError, match="is empty"):
        Settings.from_env({"PETSTORE_VAR_DIR": str(tmp_path)})


def test_memory_counter_increments_never_rescan_every_key() -> None:
    """Expiry is lazy and ordered: an increment visits only windows that have ended, each once,
    however many keys are live (the store used to rescan all of them past 100,000 keys)."""
    now = [1000.0]
    store = MemoryCounterStore(clock=lambda: now[0])
    live = 120_000

    async def go() -> None:
        for i in range(live):
            await store.increment(f"ip:{i}", 60)
        assert store.visited == 0
        for i in range(1000):
            await store.increment(f"fresh:{i}", 60)  # nothing has expired: nothing is visited
        assert store.visited == 0
        now[0] += 61
        await store.increment("after", 60)  # every ended window is dropped, once
        assert store.visited == live + 1000
        assert len(store) == 1
        for i in range(1000):
            await store.increment(f"later:{i}", 60)
        assert store.visited == live + 1000  # and never visited again

    asyncio.run(go())
