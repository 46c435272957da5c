"""Server-side render time of every dashboard page on the demo store (goal: under 300 ms).

    .venv/bin/python bench/pages.py [--json]

Records the 24-hour demo into a temporary home, serves the app in-process, warms each page
once, then reports the median of 10 renders per page.
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
    args = parser.parse_args(argv)
    from fastapi.testclient import TestClient

    from lakelens.config import load_settings
    from lakelens.demo import run_demo
    from lakelens.server import create_app
    from lakelens.store import Store

    with tempfile.TemporaryDirectory(prefix="lakelens-pages-bench-") as home:
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
                "/assets/dlt_glucose_entries",
                "/assets/fct_glucose_readings?runs=288",
                "/lineage",
                "/lineage/stg_glucose_entries",
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
        print("Dashboard pages on the demo store, median of 10 renders (in-process)")
        for path, ms in results.items():
            print(f"   {path:45} {ms:8.1f} ms   {'PASS' if ms < GOAL_MS else 'FAIL'}")
    return 0 if all(ms < GOAL_MS for ms in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
