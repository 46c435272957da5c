"""Bulk appends (COPY on PostgreSQL, multi-row INSERT on SQLite) store every value as given."""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa

from lakelens.events import Batch
from lakelens.model import MetricPoint
from lakelens.store import Store
from lakelens.store.writes import write_batch

# Text that COPY's text format must escape: tab, newline, carriage return, backslash, \N.
AWKWARD = ["tab\there", "two\nlines", "cr\rlf", "back\\slash", "\\N", "", "naïve ☃ 𝄞", "a,b;'\""]


def test_a_bulk_of_logs_and_metrics_reads_back_exactly(store_url: str) -> None:
    batch = Batch()
    expected_logs = []
    for i in range(40):  # past the size from which PostgreSQL copies
        text = AWKWARD[i % len(AWKWARD)]
        row = (
            1_700_000_000.25 + i,
            10 * (i % 5),
            f"message {i} {text}",
            None if i % 3 else f"logger {text}",
            f"run-{i % 2}",
            None if i % 4 else "orders",
            None,
            "0af7651916cd43dd8448eb211c80319c" if i % 2 else None,
            None,
            None if i % 2 else f'{{"note": "{i}"}}',
        )
        batch.logs.append(row)
        expected_logs.append(row)
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    for i in range(20):
        batch.add(
            MetricPoint(f"rows {AWKWARD[i % len(AWKWARD)]}", i * 1.5, time=when, asset="orders")
        )
    store = Store(store_url)
    try:
        assert write_batch(store.engine, batch)
        with store.connect() as conn:
            logs = conn.execute(
                sa.text(
                    "SELECT time, level, message, logger, run_id, asset, job, trace_id, span_id, "
                    "attributes FROM logs ORDER BY id"
                )
            ).all()
            metrics = conn.execute(
                sa.text("SELECT name, value, asset FROM metric_points ORDER BY id")
            ).all()
    finally:
        store.close()
    assert [tuple(row) for row in logs] == expected_logs
    assert [tuple(row) for row in metrics] == [
        (f"rows {AWKWARD[i % len(AWKWARD)]}", i * 1.5, "orders") for i in range(20)
    ]
