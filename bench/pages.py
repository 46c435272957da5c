"""Server-side render time of every dashboard page (goal: under 300 ms).

    .venv/bin/python bench/pages.py [--json]
    .venv/bin/python bench/pages.py --home .bench-data/full/home --asset mrt_customers_hourly

Records the 24-hour demo into a temporary home (or reads an existing store with --home, such
as bench/queries.py's 1M-materialization one, without writing to it), serves the app
in-process, warms each page once, then reports the median of 10 renders per page.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

GOAL_MS = 300.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--home", help="an existing store to read instead of the demo's")
    parser.add_argument("--asset", default="fct_glucose_readings", help="the asset page to time")
    parser.add_argument(
        "--upstream", default="dlt_glucose_entries", help="a second asset page (short history)"
    )
    args = parser.parse_args(argv)
    from fastapi.testclient import TestClient

    from lakelens.config import load_settings
    from lakelens.demo import run_demo
    from lakelens.server import create_app
    from lakelens.store import Store

    with tempfile.TemporaryDirectory(prefix="lakelens-pages-bench-") as scratch:
        home = args.home or scratch
        if args.home is None:
            run_demo(home, runs=288)
        settings = load_settings(home=home, log_format="none")
        store = Store(settings=settings)
        with TestClient(create_app(settings, store, run_alerts=False)) as client:
            run = client.get("/api/v1/runs", params={"status": "failure"}).json()["runs"][0][
                "run_id"
            ]
            paths = [
                "/",
                "/?period=7d",
                f"/assets/{args.upstream}",
                f"/assets/{args.asset}?runs=288",
                "/lineage",
                f"/lineage/{args.asset}",
                "/logs",
                f"/runs/{run}",
                "/alerts",
            ]
            results = {}
            for path in paths:
                client.get(path).raise_for_status()  # warm
                times = []
                for _ in range(10):
                    began = time.perf_counter()
                    client.get(path).raise_for_status()
                    times.append((time.perf_counter() - began) * 1000)
                results[path] = statistics.median(times)
        store.close()
    if args.json:
        print(json.dumps({"median_ms": results, "goal_ms": GOAL_MS}, indent=2))
    else:
        print(
            f"Dashboard pages on {args.home or 'the demo store'}, median of 10 renders (in-process)"
        )
        for path, ms in results.items():
            print(f"   {path:45} {ms:8.1f} ms   {'PASS' if ms < GOAL_MS else 'FAIL'}")
    return 0 if all(ms < GOAL_MS for ms in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
