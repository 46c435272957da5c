"""Time of one alert evaluation (every rule, read-only) on the big store of bench/queries.py.

    .venv/bin/python bench/queries.py --quick     # builds .bench-data/quick once (or the full store)
    .venv/bin/python bench/alert_evaluation.py [--store .bench-data/full/home/lakelens.db]
    .venv/bin/python bench/alert_evaluation.py --database-url postgresql://postgres@127.0.0.1/test

The server evaluates every 30 s and within 250 ms of each new failure, so one evaluation must
stay well below a second even on a big store. With --database-url (or LAKELENS_DATABASE_URL),
a PostgreSQL server, the same evaluation also runs on the PostgreSQL copy of that store
(bench/bigstore_pg.py), and each figure's PostgreSQL ÷ SQLite is printed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bigstore_pg import add_database_url, bench_store_url

GOAL_MS = 1000.0
FIRST_PASS = ("late", "slow_and_volume")  # learn rhythms and judge the latest runs


def evaluate(url: str) -> dict[str, tuple[float, int]]:
    """(ms, findings) of each rule, of all rules warm, and of the best of 3 whole cycles."""
    from lakelens.alerts import rules
    from lakelens.alerts.config import AlertingConfig
    from lakelens.alerts.engine import AlertEngine
    from lakelens.store import Store

    store = Store(url)  # upgrades the bench store to this revision on first use
    config = AlertingConfig()
    found: dict[str, tuple[float, int]] = {}
    with store.connect() as conn:
        now = conn.exec_driver_sql("SELECT max(end_time) FROM materializations").scalar()
        for name, rule in rules.RULES:
            began = time.perf_counter()
            findings = rule(rules.RuleContext(conn, config, now))
            found[name] = ((time.perf_counter() - began) * 1000, len(findings))
        began = time.perf_counter()
        findings = rules.evaluate_rules(conn, config, now=now)
        found["rules, warm"] = ((time.perf_counter() - began) * 1000, len(findings))
    cycles = []
    for _ in range(3):  # the whole cycle: rules, alerts, incidents, in one write transaction
        began = time.perf_counter()
        AlertEngine(store, config).evaluate(now=now)
        cycles.append((time.perf_counter() - began) * 1000)
    store.close()
    found["one evaluation cycle (best of 3)"] = (min(cycles), 0)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--store", default=".bench-data/full/home/lakelens.db", help="SQLite store to read"
    )
    add_database_url(parser, "evaluate on its copy of the store too")
    args = parser.parse_args(argv)
    path = Path(args.store).resolve()
    if not path.exists():
        raise SystemExit(f"{path} does not exist: build it with bench/queries.py first.")
    stores = {"SQLite": f"sqlite:///{path}"}
    if args.database_url:
        stores["PostgreSQL"] = bench_store_url(args.database_url, path.parent)
    import sqlite3

    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        assets = conn.execute("SELECT count(*) FROM assets").fetchone()[0]
    print(f"Alert rules on {path} ({path.stat().st_size / 1e9:.2f} GB, {assets:,} assets)")
    results = {name: evaluate(url) for name, url in stores.items()}
    return report(results)


def report(results: dict[str, dict[str, tuple[float, int]]]) -> int:
    names = list(results)
    print(f"   {'':34}" + "".join(f"{n:>12} {'findings':>9}" for n in names) + "  PG ÷ SQLite")
    lite = results["SQLite"]
    for key in lite:
        cells = "".join(f"{results[n][key][0]:9.1f} ms {results[n][key][1]:9}" for n in names)
        ratio = ""
        if "PostgreSQL" in results:
            ratio = f"{results['PostgreSQL'][key][0] / lite[key][0]:11.2f}x"
        note = "   (first pass: learns rhythms and judges latest runs)" if key in FIRST_PASS else ""
        print(f"   {key:34}{cells}{ratio}{note}")
    cycle = "one evaluation cycle (best of 3)"
    verdicts = {n: results[n][cycle][0] < GOAL_MS for n in names}
    for name in names:
        verdict = "PASS" if verdicts[name] else "FAIL"
        print(
            f"   {name}: one cycle {results[name][cycle][0]:.0f} ms, goal < {GOAL_MS:.0f} ms {verdict}"
        )
    return 0 if all(verdicts.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
