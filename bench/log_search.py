"""`lakelens logs --grep` on the big store, against the same SQL in the database's own client.

    .venv/bin/python bench/log_search.py --quick     # the 200k-log store: a smoke run
    .venv/bin/python bench/log_search.py             # the 10M-log store (bench/bigstore.py)
    .venv/bin/python bench/log_search.py --database-url postgresql://postgres@127.0.0.1/test
    .venv/bin/python bench/log_search.py --store-url postgresql://…/lakelens_bench_full_v2

For each pattern, with `--since 7d`: the CLI (wall-clock, Python start-up included), the SQL it
runs given to `sqlite3` (or `psql`) as the reference, and the LIKE scan lakelens ran before the
trigram index, in the same client. With --database-url the store's logs are also copied into a
new database on that server (COPY into its day partitions, then the pg_trgm indexes of the days
that ended, as `lakelens db upgrade` builds them) and measured there.
Goal: `logs --grep timeout --since 7d` within 300 ms on both stores.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import bigstore
from bigstore import DAY, FULL, QUICK, prepare, say
from lakelens.analysis.logs import COLUMNS, LogFilter
from lakelens.store import Store
from lakelens.store.partitioning import maintain

GOAL_MS = 300.0
PATTERNS = ("timeout", "timed out", "warehouse.internal", "page")
ROOT = Path(__file__).resolve().parent.parent
LAKELENS = str(Path(sys.executable).with_name("lakelens"))


def literal(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def statement(
    grep: str, since: float, dialect: str, *, until: float | None = None, scan: bool = False
) -> str:
    """The SQL `lakelens logs --grep` runs (`dialect=""`: the scan it ran before the index)."""
    condition, params = LogFilter(grep=grep, since=since, until=until).sql(dialect, scan=scan)
    sql = f"SELECT {COLUMNS} FROM logs WHERE {condition} ORDER BY time DESC, id DESC LIMIT 100"
    return re.sub(r":(\w+)", lambda m: literal(params[m.group(1)]), sql)


def today_statements(grep: str, url: str) -> str:
    """What `logs --grep` asks of today's logs on PostgreSQL (analysis/logs.py `_today_first`):
    the rows since the newest hourly partial index scanned, those before it through it."""
    try:
        from lakelens.store.log_search_days import below, today_boundary
    except ImportError:  # a tree from before the hourly index (a before/after run)
        return statement(grep, time.time() // DAY * DAY, "postgresql", scan=True)
    today = time.time() // DAY * DAY
    store = Store(url, auto_upgrade=False)
    with store.reader() as db:
        boundary = today_boundary(db)
    store.close()
    if boundary is None:
        return statement(grep, today, "postgresql", scan=True)
    recent = statement(grep, boundary, "postgresql", scan=True)
    older = statement(grep, today, "postgresql", until=boundary)
    older = older.replace(" ORDER BY", f" AND {below(boundary)} ORDER BY")
    return f"{recent}; {older}"


def timed(argv: list[str], reps: int, env: dict[str, str] | None = None) -> tuple[float, int]:
    """(median wall-clock ms of `reps` runs after one warm-up, lines printed)."""
    samples, lines = [], 0
    for i in range(reps + 1):
        started = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
        elapsed = (time.perf_counter() - started) * 1000
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv[:3])} failed: {done.stderr.strip()[:300]}")
        lines = len(done.stdout.splitlines())
        if i:
            samples.append(elapsed)
    return statistics.median(samples), lines


def copy_to_postgres(db: Path, url: str) -> tuple[str, float, float]:
    """A new database on the server at `url` holding the store's logs; (its URL, seconds of
    COPY, seconds building the trigram indexes)."""
    import psycopg
    import sqlalchemy as sa

    plain = sa.make_url(url).set(drivername="postgresql")
    name = "lakelens_bench_log_search"
    with psycopg.connect(plain.render_as_string(hide_password=False), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name}")
    target = plain.set(database=name).render_as_string(hide_password=False)
    store = Store(target)
    for weeks in range(5, -1, -1):  # day partitions for the last 5 weeks, as a server makes
        maintain(store.engine, now=time.time() - weeks * 7 * DAY)
    columns = ("id", "time", "level", "message", "logger", "run_id", "asset", "job")
    columns += ("trace_id", "span_id", "attributes")
    source = sqlite3.connect(db)
    with psycopg.connect(target, autocommit=True) as conn:
        started = time.perf_counter()
        with (
            conn.cursor() as cursor,
            cursor.copy(f"COPY logs ({', '.join(columns)}) FROM STDIN") as out,
        ):
            for row in source.execute(f"SELECT {', '.join(columns)} FROM logs"):
                out.write_row(row)
        copied = time.perf_counter() - started
        conn.execute("SELECT setval('logs_id_seq', (SELECT max(id) FROM logs))")
    # The trigram indexes of the days that ended (and logs_default), as `lakelens db upgrade`
    # or a server's hourly upkeep builds them, and today's partial ones up to this hour.
    from lakelens.store.log_search_days import build_today

    started = time.perf_counter()
    built = store.index_ended_days() + build_today(store.engine, wait=True)
    indexed = time.perf_counter() - started
    store.close()
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE logs")
    say(f"  {built} trigram indexes built (ended days, and today up to this hour)")
    source.close()
    return target, copied, indexed


def measure(
    label: str,
    cli_env: dict[str, str],
    client: list[str],
    dialect: str,
    reps: int,
    url: str | None = None,
) -> list[dict[str, Any]]:
    since = time.time() - 7 * DAY
    found = []
    for grep in PATTERNS:
        say(f"{label}: --grep {grep!r} ...")
        cli_ms, cli_lines = timed(
            [LAKELENS, "logs", "--grep", grep, "--since", "7d", "--json", "-n", "100"],
            reps,
            cli_env,
        )
        ref_ms, ref_lines = timed([*client, statement(grep, since, dialect)], reps)
        scan = statement(grep, since, "")
        if dialect != "sqlite":  # the same SQL: keep the planner off the trigram indexes
            scan = f"SET enable_bitmapscan = off; {scan}"
        scan_ms, _ = timed([*client, scan], max(1, reps // 2))
        # PostgreSQL: today's part of what the CLI asks (scan, and the hourly index if any).
        today_ms = timed([*client, today_statements(grep, url)], reps)[0] if url else math.nan
        found.append(
            {
                "store": label,
                "grep": grep,
                "cli_ms": cli_ms,
                "reference_ms": ref_ms,
                "scan_ms": scan_ms,
                "today_ms": today_ms,
                "rows": cli_lines,
                "reference_rows": ref_lines,
            }
        )
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the small store: a smoke run")
    parser.add_argument("--reps", type=int, default=5, help="timed runs of each (median)")
    parser.add_argument(
        "--data", type=Path, default=ROOT / ".bench-data", help="cache directory (.bench-data/)"
    )
    parser.add_argument("--database-url", help="also measure on this PostgreSQL server")
    parser.add_argument(
        "--store-url",
        help="measure PostgreSQL on this existing copy of the store (bench/queries.py "
        "--database-url makes one) instead of copying the logs again",
    )
    parser.add_argument(
        "--keep-times",
        action="store_true",
        help="leave a cached store's times as they are (shifting them to now makes "
        "bench/queries.py's PostgreSQL copy again)",
    )
    args = parser.parse_args()
    if args.keep_times:
        bigstore.FRESH_SECONDS = math.inf
    sizes = QUICK if args.quick else FULL
    data = (args.data / ("quick" if args.quick else "full")).resolve()
    data.mkdir(parents=True, exist_ok=True)
    info, _ = prepare(data, sizes, False)
    home = data / "home"
    load = os.getloadavg()[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKELENS_")}
    sqlite_bin = shutil.which("sqlite3")
    if sqlite_bin is None:
        raise SystemExit("sqlite3 is not installed: apt-get install sqlite3")
    results = measure(
        "SQLite",
        env | {"LAKELENS_HOME": str(home)},
        [sqlite_bin, str(home / "lakelens.db")],
        "sqlite",
        args.reps,
    )
    if args.database_url or args.store_url:
        if args.store_url:
            url = args.store_url
        else:
            say("copying the logs into PostgreSQL ...")
            url, copied, indexed = copy_to_postgres(home / "lakelens.db", args.database_url)
            say(f"  COPY {copied:.0f} s, trigram indexes {indexed:.0f} s")
        psql = shutil.which("psql")
        if psql is None:
            raise SystemExit("psql is not installed: apt-get install postgresql-client")
        results += measure(
            "PostgreSQL",
            env | {"LAKELENS_DATABASE_URL": url},
            [psql, url, "-qAt", "-c"],
            "postgresql",
            args.reps,
            url,
        )
    print(
        f"logs --grep P --since 7d on {info['counts']['logs']:,} logs "
        f"(median of {args.reps}; load average {load:.2f} before, {os.getloadavg()[0]:.2f} after)"
    )
    print(
        f"   {'store':10} {'pattern':20} {'rows':>5} {'CLI ms':>8} {'client ms':>10} "
        f"{'CLI÷client':>10} {'scan ms':>9} {'scan÷index':>10} {'today ms':>9}"
    )
    for r in results:
        print(
            f"   {r['store']:10} {r['grep']:20} {r['rows']:>5} {r['cli_ms']:>8.1f} "
            f"{r['reference_ms']:>10.1f} {r['cli_ms'] / r['reference_ms']:>10.2f} "
            f"{r['scan_ms']:>9.1f} {r['scan_ms'] / r['reference_ms']:>10.2f} "
            f"{r['today_ms']:>9.1f}"
        )
    verdicts = [r["cli_ms"] <= GOAL_MS for r in results if r["grep"] == "timeout"]
    print(
        f"goal: `logs --grep timeout --since 7d` <= {GOAL_MS:.0f} ms: "
        + ("PASS" if all(verdicts) else "FAIL")
    )
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
