"""One way to ask for a page (PageRequest) and one shape of the answer (Page), for every list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

DEFAULT_PAGE = 1
DEFAULT_LIMIT = 20
MAX_PAGE_SIZE = 100
MAX_PAGE = 10_000  # deeper pages would be an unbounded OFFSET (the spec's page maximum)


@dataclass(frozen=True)
class PageRequest:
    """Which page of a list, 1-based. Owns the defaults (page 1, 20 items) and clamps what it is
    given into range (1 ≤ page ≤ 10,000, 1 ≤ limit ≤ 100), so no protocol can ask for 10,000
    rows or an unbounded offset; REST
    refuses out-of-range values earlier, from the spec's limits."""

    page: int = DEFAULT_PAGE
    limit: int = DEFAULT_LIMIT

    def __post_init__(self) -> None:
        object.__setattr__(self, "page", min(max(int(self.page), 1), MAX_PAGE))
        object.__setattr__(self, "limit", min(max(int(self.limit), 1), MAX_PAGE_SIZE))

    @classmethod
    def of(cls, page: int | None = None, limit: int | None = None) -> PageRequest:
        """From optional wire values: a missing one takes its default."""
        return cls(
            DEFAULT_PAGE if page is None else page, DEFAULT_LIMIT if limit is None else limit
        )

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit

    def slice(self, items: Sequence[T]) -> Page[T]:
        """This page of an in-memory list."""
        return Page(
            items[self.offset : self.offset + self.limit], len(items), self.page, self.limit
        )

    def of_rows(self, rows: Sequence[T], total: int) -> Page[T]:
        """The page made of ``rows`` (already offset and limited) out of ``total``."""
        return Page(rows, total, self.page, self.limit)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    total: int
    page: int
    limit: int
    after: object | None = None
    """Where the next page starts, for lists that offer keyset cursors (the catalogue's
    ``Keyset``); None when there is no next page or the list offers none."""

    @property
    def total_pages(self) -> int:
        return max(1, -(-self.total // self.limit))
