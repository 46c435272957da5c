"""Committing what a request brought: one transaction, and at most once per batch id."""

from __future__ import annotations

import re
import threading
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

from lakelens.errors import InvalidArgumentError

if TYPE_CHECKING:
    from lakelens.ingest import Ingested
    from lakelens.store import Store

__all__ = ["BATCH_ID_HEADER", "commit", "parse_batch_id"]

BATCH_ID_HEADER = "Idempotency-Key"
_BATCH_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def parse_batch_id(value: str | None) -> str | None:
    """The batch id of the Idempotency-Key header (letters, digits, . _ : -; up to 128)."""
    if value is None:
        return None
    value = value.strip()
    if not _BATCH_ID.fullmatch(value):
        raise InvalidArgumentError(
            f"Invalid {BATCH_ID_HEADER} header: use 1-128 letters, digits, '.', '_', ':' or '-'."
        )
    return value


# SQLite has one writer at a time: writers of this process queue on a lock rather than on
# SQLite's busy handler, which polls with sleeps of up to 100 ms.
_SQLITE_WRITERS: dict[str, threading.Lock] = {}
_GUARD = threading.Lock()


def _writer_lock(store: Store) -> Any:
    if not store.is_sqlite:
        return nullcontext()
    with _GUARD:
        return _SQLITE_WRITERS.setdefault(store.url, threading.Lock())


def commit(
    store: Store, ingested: Ingested, *, source: str, batch_id: str | None, now: float
) -> bool:
    """Write the accepted events in one transaction; False (and nothing written) for a batch id
    that was committed before.

    The batch id row is inserted first in the same transaction, so two concurrent requests
    with one id serialize on it, and a crash leaves either both or neither.
    """
    with _writer_lock(store):
        return _commit(store, ingested, source=source, batch_id=batch_id, now=now)


def _commit(
    store: Store, ingested: Ingested, *, source: str, batch_id: str | None, now: float
) -> bool:
    return store.write(
        ingested.batch,
        batch_id=batch_id,
        source=source,
        accepted=ingested.accepted,
        rejected=len(ingested.rejected),
        now=now,
    )
