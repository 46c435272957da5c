"""The usage series of `/metrics` over 5,000 used assets, against two same-run references.

    .venv/bin/python bench/usage_metrics.py                       # SQLite, ~1 min
    .venv/bin/python bench/usage_metrics.py --postgres postgresql://postgres@127.0.0.1:5432/test

The store: `--assets` assets, each read once a day for 14 days by a nightly job (half of
them by a second job too), one materialization each, and every tenth one shown by a
dashboard asset that reports its views every hour for 7 days. Figures, best of `--repeat`:

- `usage_families()`: the usage gauges of one scrape (two queries for every asset);
- reference "one at a time": `asset_usage()` for each used asset, as the asset page computes
  it (what per-asset gauges would cost without `usage_by_asset()`);
- reference "store families": `StoreCollector.collect()`, the per-asset families every scrape
  already had, on the same store.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

DAY = 86400.0


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def build(url: str, assets: int, now: float) -> None:
    from lakelens.events import Batch
    from lakelens.model import Asset, AssetUsage, LineageEdge, Materialization, Run, RunStatus
    from lakelens.store import Store

    store = Store(url)
    try:
        batch = Batch(runs=[Run("r0", "build", RunStatus.SUCCESS, _at(now - 3600), _at(now - 60))])
        for a in range(assets):
            name = f"schema.table_{a:05d}"
            batch.assets.append(Asset(name, kind="table"))
            batch.materializations.append(
                Materialization(
                    f"m{a}", "r0", name, RunStatus.SUCCESS, _at(now - 3600), _at(now - 60), rows=10
                )
            )
            for day in range(14):
                at = _at(now - day * DAY - 7200)
                batch.usage.append(AssetUsage(name, "nightly", time=at, run_id=f"n{day}"))
                if a % 2:
                    batch.usage.append(AssetUsage(name, "export", time=at, run_id=f"e{day}"))
            if a % 10 == 0:
                board = f"board_{a:05d}"
                batch.assets.append(Asset(board, kind="dashboard"))
                batch.edges.append(LineageEdge(name, board))
                for hour in range(7 * 24):
                    at = _at(now - hour * 3600 - 30)
                    batch.usage.append(AssetUsage(board, board, "view", 20, at))
            if len(batch.usage) > 20_000:
                store.write(batch)
                batch = Batch()
        store.write(batch)
    finally:
        store.close()


def _best(repeat: int, work: Any) -> float:
    took = []
    for _ in range(repeat):
        began = time.perf_counter()
        work()
        took.append(time.perf_counter() - began)
    return min(took)


def measure(url: str, assets: int, repeat: int) -> dict[str, Any]:
    from lakelens.analysis.usage import asset_usage, usage_by_asset
    from lakelens.export.prometheus import StoreCollector
    from lakelens.export.usage_metrics import usage_families
    from lakelens.store import Store

    now = time.time()
    began = time.perf_counter()
    build(url, assets, now)
    built = time.perf_counter() - began
    store = Store(url)
    try:
        with store.connect() as conn:
            used = [u.name for u in usage_by_asset(conn, now=now)]
            families = usage_families(conn, now=now)
            series = sum(len(f.samples) for f in families)
            gauges = _best(repeat, lambda: usage_families(conn, now=now))
            one_at_a_time = _best(1, lambda: [asset_usage(conn, name, now=now) for name in used])
            store_families = _best(
                repeat, lambda: list(StoreCollector(conn, since=None, now=now).collect())
            )
    finally:
        store.close()
    return {
        "assets": assets,
        "used_assets": len(used),
        "series": series,
        "build_s": round(built, 1),
        "usage_families_s": round(gauges, 3),
        "one_at_a_time_s": round(one_at_a_time, 3),
        "store_families_s": round(store_families, 3),
        "ratio_vs_one_at_a_time": round(gauges / one_at_a_time, 3),
        "ratio_vs_store_families": round(gauges / store_families, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--postgres", help="a PostgreSQL URL (a scratch database is made)")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = measure(
            f"sqlite:///{Path(tmp) / 'lakelens.db'}", args.assets, args.repeat
        )
    if args.postgres:
        import sqlalchemy as sa

        scratch = f"bench_usage_{int(time.time())}"
        admin = sa.create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {scratch}")
        try:
            url = sa.make_url(args.postgres).set(database=scratch)
            results["postgres"] = measure(
                url.render_as_string(hide_password=False), args.assets, args.repeat
            )
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {scratch} WITH (FORCE)")
            admin.dispose()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
