"""Retention: prune deletes what is older than the window and keeps the rest."""

from __future__ import annotations

import time

from lakelens.analysis.profiles import profiles
from lakelens.events import Batch
from lakelens.model import (
    AssetUsage,
    CheckResult,
    Materialization,
    MetricPoint,
    Profile,
    Run,
    SchemaSnapshot,
    TableObservation,
    from_epoch,
)
from lakelens.store import Store, reads

DAY = 86400.0


def _events(now: float, age_days: float, tag: str) -> Batch:
    t = now - age_days * DAY
    batch = Batch()
    batch.add(Run(f"run-{tag}", "job", status="success", start_time=t, end_time=t + 1))  # type: ignore[arg-type]
    batch.add(
        Materialization(
            f"mat-{tag}", f"run-{tag}", "asset_a", "success", start_time=t, end_time=t + 1
        )
    )  # type: ignore[arg-type]
    batch.add(CheckResult(f"chk-{tag}", "asset_a", "range", True, time=t))  # type: ignore[arg-type]
    batch.add(MetricPoint("queue_size", 1.0, time=t))  # type: ignore[arg-type]
    batch.add(SchemaSnapshot("asset_a", [("id", tag)], time=t, hash=f"h-{tag}"))  # type: ignore[arg-type]
    batch.add(Profile("asset_a", {"id": {"type": tag}}, time=t, row_count=1))  # type: ignore[arg-type]
    batch.add(TableObservation("asset_a", "wh", from_epoch(t), row_count=1))  # type: ignore[arg-type]
    batch.add(AssetUsage("asset_a", "job", time=from_epoch(t), run_id=f"run-{tag}"))
    batch.add(AssetUsage("asset_a", "Superset", kind="view", count=9, time=from_epoch(t)))
    batch.logs.append((t, 20, f"log {tag}", None, f"run-{tag}", "asset_a", "job", None, None, None))
    batch.spans.append(
        (
            "t" * 32,
            f"{tag:0>16}",
            None,
            f"run-{tag}",
            "asset_a",
            "s",
            t,
            t + 1,
            "ok",
            None,
            None,
            None,
        )
    )
    return batch


def test_prune_deletes_only_events_older_than_the_window(store_url: str) -> None:
    store = Store(store_url)
    now = time.time()
    store.write(_events(now, 40, "old"))
    store.write(_events(now, 1, "new"))
    progress: list[tuple[str, int]] = []
    deleted = store.prune(30, now=now, progress=lambda table, n: progress.append((table, n)))
    assert deleted == {
        "logs": 1,
        "spans": 1,
        "metric_points": 1,
        "check_results": 1,
        "materializations": 1,
        "runs": 1,
        "schema_snapshots": 1,
        "profiles": 1,
        "table_observations": 1,
        "asset_usage": 2,
        "ingest_batches": 0,
    }
    assert {table for table, _ in progress} == set(deleted)
    with store.connect() as conn:
        assert [r.run_id for r in reads.runs(conn)] == ["run-new"]
        assert [m.id for m in reads.materializations(conn)] == ["mat-new"]
        assert [log.message for log in reads.logs(conn)] == ["log new"]
        assert [s.hash for s in reads.schema_snapshots(conn)] == ["h-new"]
        usage = conn.exec_driver_sql("SELECT run_id, count FROM asset_usage ORDER BY count")
        assert usage.all() == [("run-new", 1), (None, 9)]
    store.close()


def test_prune_keeps_the_newest_schema_snapshot_whatever_its_age(store_url: str) -> None:
    store = Store(store_url)
    now = time.time()
    store.write(_events(now, 50, "older"))
    store.write(_events(now, 40, "old"))
    store.prune(30, now=now)
    with store.connect() as conn:
        assert [s.hash for s in reads.schema_snapshots(conn)] == ["h-old"]
        # The newest profile too: the next one's change is measured against it.
        assert [p.columns["id"]["type"] for p in profiles(conn, "asset_a")] == ["old"]
    store.close()


def test_retention_setting_is_the_default(tmp_path) -> None:
    from lakelens.config import load_settings

    settings = load_settings(env={"LAKELENS_RETENTION_DAYS": "7"}, home=str(tmp_path))
    store = Store(settings=settings)
    now = time.time()
    store.write(_events(now, 8, "eight"))
    store.write(_events(now, 6, "six"))
    assert store.prune(now=now)["runs"] == 1
    store.close()


def test_prune_refreshes_planner_statistics(tmp_path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'l.db'}")
    now = time.time()
    for age in (1, 2, 3):
        store.write(_events(now, age, f"d{age}"))
    store.prune(30, now=now)
    with store.connect() as conn:
        analysed = {row[0] for row in conn.exec_driver_sql("SELECT tbl FROM sqlite_stat1")}
    assert {"logs", "materializations", "runs"} <= analysed
    store.close()
