"""Get Dashboard Stats: counts and sums over a period, computed by the database (GROUP BY,
COUNT, SUM), never by loading rows.

- pets: by status and by species, now (the catalogue as it stands, not the period);
- orders: placed in the period, by status (their status now);
- revenue: SUCCEEDED payments created in the period, summed per currency (a payment voided by a
  cancellation is CANCELLED and no longer revenue);
- new users: accounts created in the period.

The period is ``[from, to)``; without ``to`` it ends now, without ``from`` it starts 30 days
before its end."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Order, Payment, Pet, User
from models.base import utcnow
from models.database import Database
from models.enums import OrderStatus, PaymentStatus, PetStatus, Species
from services.admin import require_admin
from services.shared.errors import FieldError, InvalidInput
from services.shared.principal import Principal

DEFAULT_PERIOD = timedelta(days=30)
MAX_PERIOD = timedelta(days=366 * 5)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
"""The period lies within [1970, 9000): nothing of the shelter is older, and the bounds keep
every date the dashboard answers with a plain four-digit RFC 3339 timestamp."""


@dataclass(frozen=True)
class Period:
    """``[start, end)``, both timezone-aware. Validates itself: start before end, at most five
    years (InvalidInput naming ``from``)."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise InvalidInput([FieldError("from", "must carry a time zone", "format")])
        for name, value in (("to", self.end), ("from", self.start)):
            try:
                inside = EARLIEST <= value <= LATEST
            except OverflowError:  # an offset that moves it past year 1 or 9999
                inside = False
            if not inside:
                raise InvalidInput(
                    [FieldError(name, "must lie between 1970-01-01 and 9000-01-01", "range")]
                )
        if self.start >= self.end:
            raise InvalidInput([FieldError("from", "must be earlier than to", "range")])
        if self.end - self.start > MAX_PERIOD:
            raise InvalidInput([FieldError("from", "the period is at most 5 years", "range")])

    @classmethod
    def of(cls, start: datetime | None = None, end: datetime | None = None) -> Period:
        end = end or utcnow()
        if start is None:
            try:
                start = end - DEFAULT_PERIOD
            except OverflowError:  # an end within 30 days of year 1
                raise InvalidInput([FieldError("to", "is out of range", "range")]) from None
        return cls(start, end)


@dataclass(frozen=True)
class DashboardStats:
    period: Period
    pets_by_status: dict[str, int] = field(default_factory=dict)
    pets_by_species: dict[str, int] = field(default_factory=dict)
    orders_by_status: dict[str, int] = field(default_factory=dict)
    revenue: dict[str, Decimal] = field(default_factory=dict)  # currency -> sum
    new_users: int = 0

    @property
    def pets_total(self) -> int:
        return sum(self.pets_by_status.values())

    @property
    def orders_total(self) -> int:
        return sum(self.orders_by_status.values())


def _counts(session: Session, column: object, *where: object) -> dict[str, int]:
    stmt = select(column, func.count()).group_by(column)  # type: ignore[call-overload]
    if where:
        stmt = stmt.where(*where)
    return {str(key): int(count) for key, count in session.execute(stmt).all()}


def _zeroes(names: type[object], found: dict[str, int]) -> dict[str, int]:
    """Every value of the enum, in its order, 0 when none."""
    return {str(v): found.get(str(v), 0) for v in names}  # type: ignore[attr-defined]


async def dashboard_stats(db: Database, principal: Principal, period: Period) -> DashboardStats:
    """Requires the admin scope. Five aggregate statements in one read transaction."""
    require_admin(principal)

    def work(session: Session) -> DashboardStats:
        in_period = (Order.created_at >= period.start, Order.created_at < period.end)
        revenue_rows = session.execute(
            select(Payment.currency, func.sum(Payment.amount))
            .where(
                Payment.status == PaymentStatus.SUCCEEDED,
                Payment.created_at >= period.start,
                Payment.created_at < period.end,
            )
            .group_by(Payment.currency)
            .order_by(Payment.currency)
        ).all()
        new_users = session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.created_at >= period.start, User.created_at < period.end)
        )
        return DashboardStats(
            period=period,
            pets_by_status=_zeroes(PetStatus, _counts(session, Pet.status)),
            pets_by_species=_zeroes(Species, _counts(session, Pet.species)),
            orders_by_status=_zeroes(OrderStatus, _counts(session, Order.status, *in_period)),
            revenue={
                str(currency): Decimal(total or 0).quantize(Decimal("0.01"))
                for currency, total in revenue_rows
            },
            new_users=int(new_users or 0),
        )

    return await db.run(principal.tenant, work)
