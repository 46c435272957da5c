"""Time of one alert evaluation (every rule, read-only) on the big store of bench/queries.py.

    .venv/bin/python bench/queries.py --quick     # builds .bench-data/quick once (or the full store)
    .venv/bin/python bench/alert_evaluation.py [--store .bench-data/full/home/lakelens.db]

The server evaluates every 30 s and within 250 ms of each new failure, so one evaluation must
stay well below a second even on a big store.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

GOAL_MS = 1000.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--store", default=".bench-data/full/home/lakelens.db", help="SQLite store to read"
    )
    args = parser.parse_args(argv)
    path = Path(args.store)
    if not path.exists():
        raise SystemExit(f"{path} does not exist: build it with bench/queries.py first.")
    from lakelens.alerts import rules
    from lakelens.alerts.config import AlertingConfig
    from lakelens.alerts.engine import AlertEngine
    from lakelens.store import Store

    # Upgrades the bench store to this revision (incidents) on first use.
    store = Store(f"sqlite:///{path.resolve()}")
    config = AlertingConfig()
    with store.connect() as conn:
        now = conn.exec_driver_sql("SELECT max(end_time) FROM materializations").scalar()
        assets = conn.exec_driver_sql("SELECT count(*) FROM assets").scalar()
        print(f"Alert rules on {path} ({path.stat().st_size / 1e9:.2f} GB, {assets:,} assets)")
        for name, rule in rules.RULES:
            began = time.perf_counter()
            found = rule(rules.RuleContext(conn, config, now))
            print(
                f"   {name:16} {(time.perf_counter() - began) * 1000:9.1f} ms   {len(found)} findings"
                "   (first pass: learns rhythms and judges latest runs)"
                if name in ("late", "slow_and_volume")
                else f"   {name:16} {(time.perf_counter() - began) * 1000:9.1f} ms   {len(found)} findings"
            )
        began = time.perf_counter()
        findings = rules.evaluate_rules(conn, config, now=now)
        warm = (time.perf_counter() - began) * 1000
    print(f"   rules, warm      {warm:9.1f} ms   {len(findings)} findings")
    cycles = []
    for _ in range(3):  # the whole cycle: rules, alerts, incidents, in one write transaction
        began = time.perf_counter()
        AlertEngine(store, config).evaluate(now=now)
        cycles.append((time.perf_counter() - began) * 1000)
    store.close()
    total = min(cycles)
    print(
        f"   one evaluation cycle (engine, best of 3: {', '.join(f'{c:.0f}' for c in cycles)} ms)"
        f"   {total:9.1f} ms   goal < {GOAL_MS:.0f} ms   {'PASS' if total < GOAL_MS else 'FAIL'}"
    )
    return 0 if total < GOAL_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
