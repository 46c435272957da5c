"""Small helpers shared by the analysis modules (no SQLAlchemy import: see store/sql.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from lakelens.store.sql import Reader, borrow, reading

if TYPE_CHECKING:
    import sqlalchemy as sa

    from lakelens.store import Store

__all__ = ["Reader", "borrow", "connection", "reading", "since_until", "window"]


@contextmanager
def connection(source: Store | sa.Connection | sa.Engine) -> Iterator[sa.Connection]:
    """Use `source` as a SQLAlchemy connection: an open one as it is, a Store or Engine for the block."""
    if hasattr(source, "exec_driver_sql"):
        yield source  # type: ignore[misc]
    else:
        with source.connect() as conn:
            yield conn


def window(column: Any, since: float, until: float | None) -> list[Any]:
    """The half-open period `since <= column < until` (no upper bound when until is None)."""
    conditions = [column >= since]
    if until is not None:
        conditions.append(column < until)
    return conditions


def since_until(column: str, since: float, until: float | None) -> tuple[str, dict[str, Any]]:
    """SQL text for the half-open period `since <= column < until`, and its parameters."""
    if until is None:
        return f"{column} >= :since", {"since": since}
    return f"{column} >= :since AND {column} < :until", {"since": since, "until": until}
