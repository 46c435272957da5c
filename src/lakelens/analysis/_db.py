"""Small helpers shared by the analysis modules."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from lakelens.store import Store

__all__ = ["connection", "window"]


@contextmanager
def connection(source: Store | sa.Connection | sa.Engine) -> Iterator[sa.Connection]:
    """Use `source` as a connection: an open Connection as it is, a Store or Engine for the block."""
    if isinstance(source, sa.Connection):
        yield source
    else:
        with source.connect() as conn:
            yield conn


def window(column: Any, since: float, until: float | None) -> list[Any]:
    """The half-open period `since <= column < until` (no upper bound when until is None)."""
    conditions = [column >= since]
    if until is not None:
        conditions.append(column < until)
    return conditions
