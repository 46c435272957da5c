"""The event store: SQLAlchemy Core tables on SQLite (WAL) or PostgreSQL, migrated by Alembic."""

from __future__ import annotations

from lakelens.events import Batch
from lakelens.store._store import Store

__all__ = ["Batch", "Store"]
