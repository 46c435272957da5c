"""Server-side render time of every dashboard page (goal: under 300 ms).

    .venv/bin/python bench/pages.py [--json]
    .venv/bin/python bench/pages.py --home .bench-data/full/home --asset mrt_customers_hourly
    .venv/bin/python bench/pages.py --database-url postgresql://postgres@127.0.0.1/test

Records the 24-hour demo into a temporary home (or reads an existing store with --home, such
as bench/queries.py's 1M-materialization one, without writing to it), serves the app
in-process, warms each page once, then reports the median of 10 renders per page.

With --database-url (or LAKELENS_DATABASE_URL), a PostgreSQL server: the same pages are also
rendered from PostgreSQL — the demo recorded into a scratch database there, or, with --home,
the copy of that bench store bench/bigstore_pg.py makes — the two stores in turn, and each
page's PostgreSQL ÷ SQLite is printed (goal: under 2x, and under 500 ms).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bigstore_pg import add_database_url, bench_store_url, scratch_database

GOAL_MS = 300.0
PG_GOAL_MS = 500.0
PG_RATIO_GOAL = 2.0
RENDERS = 10


@contextlib.contextmanager
def database_url(url: str | None) -> Iterator[None]:
    """LAKELENS_DATABASE_URL set to `url` (or unset) for the block."""
    before = os.environ.pop("LAKELENS_DATABASE_URL", None)
    if url:
        os.environ["LAKELENS_DATABASE_URL"] = url
    try:
        yield
    finally:
        os.environ.pop("LAKELENS_DATABASE_URL", None)
        if before is not None:
            os.environ["LAKELENS_DATABASE_URL"] = before


@contextlib.contextmanager
def served(home: str, url: str | None) -> Iterator[Any]:
    """A TestClient on the app reading the store at `url` (or under `home`)."""
    from fastapi.testclient import TestClient

    from lakelens.config import load_settings
    from lakelens.server import create_app
    from lakelens.store import Store

    with database_url(url):
        settings = load_settings(home=home, log_format="none")
    store = Store(settings=settings)
    try:
        with TestClient(create_app(settings, store, run_alerts=False)) as client:
            yield client
    finally:
        store.close()


def page_paths(client: Any, asset: str, upstream: str) -> list[str]:
    run = client.get("/api/v1/runs", params={"status": "failure"}).json()["runs"][0]["run_id"]
    return [
        "/",
        "/?period=7d",
        f"/assets/{upstream}",
        f"/assets/{asset}?runs=288",
        "/lineage",
        f"/lineage/{asset}",
        "/logs",
        f"/runs/{run}",
        "/alerts",
    ]


def render_times(clients: dict[str, Any], paths: list[str]) -> dict[str, dict[str, float]]:
    """Median ms of RENDERS renders of each path, per store; the stores take turns."""
    found: dict[str, dict[str, float]] = {name: {} for name in clients}
    for path in paths:
        samples: dict[str, list[float]] = {name: [] for name in clients}
        for client in clients.values():
            client.get(path).raise_for_status()  # warm
        for _ in range(RENDERS):
            for name, client in clients.items():
                began = time.perf_counter()
                client.get(path).raise_for_status()
                samples[name].append((time.perf_counter() - began) * 1000)
        for name in clients:
            found[name][path] = statistics.median(samples[name])
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--home", help="an existing store to read instead of the demo's")
    parser.add_argument("--asset", default="fct_glucose_readings", help="the asset page to time")
    parser.add_argument(
        "--upstream", default="dlt_glucose_entries", help="a second asset page (short history)"
    )
    add_database_url(parser, "render the pages from it too")
    args = parser.parse_args(argv)
    from lakelens.demo import run_demo

    with contextlib.ExitStack() as stack:
        scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="lakelens-pages-bench-"))
        home = args.home or scratch
        urls: dict[str, str | None] = {"sqlite": None}
        if args.database_url and args.home:
            urls["postgres"] = bench_store_url(args.database_url, Path(args.home).resolve())
        elif args.database_url:
            urls["postgres"] = stack.enter_context(
                scratch_database(args.database_url, "lakelens_pages_bench")
            )
        if args.home is None:
            for url in urls.values():
                with database_url(url):
                    run_demo(home, runs=288)
        clients = {name: stack.enter_context(served(home, url)) for name, url in urls.items()}
        paths = page_paths(clients["sqlite"], args.asset, args.upstream)
        results = render_times(clients, paths)
    return report(results, args.home, args.json)


def report(results: dict[str, dict[str, float]], home: str | None, as_json: bool) -> int:
    lite, pg = results["sqlite"], results.get("postgres")
    verdicts = {path: ms < GOAL_MS for path, ms in lite.items()}
    ratios = {}
    if pg:
        ratios = {path: pg[path] / lite[path] for path in lite}
        for path in lite:
            verdicts[path] &= ratios[path] < PG_RATIO_GOAL and pg[path] < PG_GOAL_MS
    passed = all(verdicts.values())
    if as_json:
        found: dict[str, Any] = {"median_ms": lite, "goal_ms": GOAL_MS}
        if pg:
            found |= {"postgres_median_ms": pg, "postgres_over_sqlite": ratios}
            found |= {"postgres_goal": f"< {PG_RATIO_GOAL:.0f}x SQLite, < {PG_GOAL_MS:.0f} ms"}
        print(json.dumps(found, indent=2))
        return 0 if passed else 1
    print(
        f"Dashboard pages on {home or 'the demo store'}, median of {RENDERS} renders (in-process)"
    )
    if pg:
        print(f"   {'page':45} {'SQLite':>9} {'PostgreSQL':>11} {'PG ÷ SQLite':>12}")
    for path, ms in lite.items():
        line = f"   {path:45} {ms:6.1f} ms"
        if pg:
            line += f" {pg[path]:8.1f} ms {ratios[path]:11.2f}x"
        print(f"{line}   {'PASS' if verdicts[path] else 'FAIL'}")
    goal = f"SQLite < {GOAL_MS:.0f} ms"
    if pg:
        goal += f"; PostgreSQL < {PG_GOAL_MS:.0f} ms and < {PG_RATIO_GOAL:.0f}x SQLite"
    print(f"   goal: {goal}")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
