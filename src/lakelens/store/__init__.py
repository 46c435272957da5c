"""The event store: SQLAlchemy Core tables on SQLite (WAL) or PostgreSQL, migrated by Alembic.

`Store` loads on first use: `lakelens.store.sql` (the plain-SQL read path) must not pull in
SQLAlchemy through this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lakelens.events import Batch

if TYPE_CHECKING:
    from lakelens.store._store import Store

__all__ = ["Batch", "Store"]


def __getattr__(name: str) -> Any:
    if name == "Store":
        from lakelens.store._store import Store

        return Store
    raise AttributeError(f"module 'lakelens.store' has no attribute {name!r}")
