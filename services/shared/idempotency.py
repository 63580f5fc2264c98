"""Idempotency keys with Stripe's semantics, for operations that create or charge.

- The first request with a key runs and its response is stored.
- The same key with the same request (fingerprint) replays that stored response.
- The same key with a different request → KeyReused (422).
- The same key while the first request is still running → Conflict (409); retry later.
- Invalid input (422) and failures the client should retry (5xx, processor errors) are not
  stored: the key is released.
- Keys expire after 24 hours; an expired key starts afresh.

Keys are scoped per tenant and caller (a user, or a guest's client address)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import IdempotencyRecord
from models.base import utcnow
from models.database import Database
from services.shared.errors import Conflict, FieldError, InvalidInput

TTL = timedelta(hours=24)
ABANDONED_AFTER = timedelta(minutes=2)
"""A key still in progress after this long belongs to a request that died (a crash between
claiming the key and storing the response); the next request with it runs again. The
database's own rules (one active order per pet, one live payment per order) still hold."""


class KeyReused(InvalidInput):
    def __init__(self) -> None:
        super().__init__(
            [
                FieldError(
                    "Idempotency-Key",
                    "this key was already used with a different request",
                    "idempotency_key_reused",
                )
            ]
        )


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class KeyScope:
    tenant: str
    caller: str
    key: str
    fingerprint: str


def _find(session: Session, scope: KeyScope) -> IdempotencyRecord | None:
    return session.scalars(
        select(IdempotencyRecord).where(
            IdempotencyRecord.caller == scope.caller, IdempotencyRecord.key == scope.key
        )
    ).first()


async def begin(db: Database, scope: KeyScope) -> StoredResponse | None:
    """Claim the key (None: go ahead and run) or return the stored response to replay.
    Raises KeyReused, Conflict (still in progress)."""

    def work(session: Session) -> StoredResponse | None:
        record = _find(session, scope)
        if record is not None and record.created_at <= utcnow() - TTL:
            session.delete(record)
            session.flush()
            record = None
        if record is None:
            session.add(
                IdempotencyRecord(
                    caller=scope.caller,
                    key=scope.key,
                    fingerprint=scope.fingerprint,
                    state="in_progress",
                    created_at=utcnow(),
                )
            )
            try:
                session.flush()
            except IntegrityError as exc:  # another process claimed it a moment ago
                raise _in_progress() from exc
            return None
        if record.fingerprint != scope.fingerprint:
            raise KeyReused()
        if record.state != "done" or record.response_status is None:
            if record.created_at > utcnow() - ABANDONED_AFTER:
                raise _in_progress()
            record.created_at = utcnow()  # take the abandoned key over and run again
            return None
        return StoredResponse(
            record.response_status, dict(record.response_headers or {}), record.response_body or b""
        )

    return await db.run(scope.tenant, work, write=True)


def _in_progress() -> Conflict:
    return Conflict(
        "A request with this Idempotency-Key is still being processed; retry shortly.",
        field="Idempotency-Key",
        code="in_progress",
    )


async def finish(db: Database, scope: KeyScope, response: StoredResponse) -> None:
    def work(session: Session) -> None:
        record = _find(session, scope)
        if record is not None:
            record.state = "done"
            record.response_status = response.status
            record.response_headers = response.headers
            record.response_body = response.body

    await db.run(scope.tenant, work, write=True)


async def release(db: Database, scope: KeyScope) -> None:
    """Forget an in-progress key so that the client's retry runs again."""

    def work(session: Session) -> None:
        session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.caller == scope.caller,
                IdempotencyRecord.key == scope.key,
                IdempotencyRecord.state == "in_progress",
            )
        )

    await db.run(scope.tenant, work, write=True)


async def purge_expired(db: Database) -> int:
    """System job: forget keys older than 24 hours in every tenant."""

    def work(session: Session) -> int:
        result = session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.created_at <= utcnow() - TTL)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    return await db.run_system(work, write=True)
