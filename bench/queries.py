"""How fast the CLI answers on a big store, wall-clock including Python start-up.

    .venv/bin/python bench/queries.py              # full: builds a 4 GB store once (about 3 min)
    .venv/bin/python bench/queries.py --quick      # smoke run on a small store (under a minute)
    .venv/bin/python bench/queries.py --json       # machine-readable results
    .venv/bin/python bench/queries.py --analyze    # also on a copy of the store after ANALYZE
    .venv/bin/python bench/queries.py --quick --database-url postgresql://postgres@127.0.0.1/test

1. The store (bench/bigstore.py), cached under --data (default .bench-data/): 1M
   materializations of 500 assets over 30 days, 10M log records, lineage, a 10,000-node graph.
   `--rebuild` builds it again.
2. Each command runs as a subprocess, `.venv/bin/lakelens ... --home DIR`: median wall-clock of
   --reps runs, after one unrecorded run that warms the page cache and the .pyc files.
3. The reference: the SQL each command read (captured once, bench/reference_sql.py) run by
   the database's own client, `sqlite3` or `psql`, as a subprocess; the ratio CLI ÷ client.
4. With --database-url (or LAKELENS_DATABASE_URL): the same rows copied into PostgreSQL with
   COPY (bench/bigstore_pg.py, a database of its own beside the one named), each command run
   on both stores in turn, and PostgreSQL ÷ SQLite per command (goal: under 2x, and under
   500 ms). DuckDB and phlo are left out of that run: they do not read the store.
5. The same questions asked of DuckDB over the same rows, exported once to Parquet, each in a
   fresh Python process: wall-clock (start-up, import, query) and the queries alone.
6. `phlo --help` (PyPI `phlo`, in its own virtualenv under --data) against `lakelens --help`.

Needs duckdb and pyarrow in the project's virtualenv (pip install duckdb pyarrow).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import bigstore
import lakelens
from bigstore import DAY, EXPORTED, FULL, QUICK, prepare, say
from bigstore_pg import add_database_url, prepare_postgres
from reference_sql import capture, client_argv, environment, script

COMMAND_GOAL_MS = 300.0  # every command answers within 300 ms, start-up included
PG_GOAL_MS = 500.0  # every command on PostgreSQL within 500 ms, start-up included
PG_RATIO_GOAL = 2.0  # and within 2x of the same command on SQLite
HELP_GOAL = 3.0  # `lakelens --help` at least 3x faster than `phlo --help`
REPS, QUICK_REPS = 7, 5

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def median_of(samples: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples)}


# -- what is timed -------------------------------------------------------------------------------
@dataclass
class Command:
    key: str
    label: str
    args: list[str]  # after `lakelens`; "{home}" stands for the store's directory
    duck: list[str] | None = None  # the same question for DuckDB: its SQL statements
    check: Callable[[str], bool] | None = None  # a sanity check of the command's output

    def argv(self, home: Path) -> list[str]:
        return [str(BIN / "lakelens"), *(a.replace("{home}", str(home)) for a in self.args)]


def run_once(
    argv: Sequence[str], cwd: Path, env: dict[str, str] | None = None
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Wall-clock ms of one run; LAKELENS_* variables are dropped unless `env` sets them."""
    env = env if env is not None else environment(None)
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    return (time.perf_counter() - start) * 1000, done


def metrics_help(cwd: Path) -> str | None:
    """`lakelens metrics summary --help`, or None while the command does not exist yet."""
    _, done = run_once([str(BIN / "lakelens"), "metrics", "summary", "--help"], cwd)
    return done.stdout if done.returncode == 0 else None


def commands(info: dict[str, Any], parquet: Path, help_text: str | None) -> list[Command]:
    """The commands in the order of the report; the metrics ones only once they exist."""
    off = info.get("parquet_offset", 0.0)  # Parquet times = store times - off
    now = time.time() - off
    p = {t: f"read_parquet('{parquet / t}.parquet')" for t in EXPORTED}
    asset, run_id, root = info["busy_asset"], info["run_id"], info["lineage_root"]
    newest = "ORDER BY time DESC, id DESC LIMIT 100"
    found = []
    if help_text is not None:
        period = ["--period", "24h"] if "--period" in help_text else []
        found += [
            Command(
                "metrics_summary",
                "metrics summary --period 24h" if period else "metrics summary",
                ["metrics", "summary", *period, "--home", "{home}"],
                duck=summary_sql(p, now - DAY),
                check=lambda out: "Runs" in out,
            ),
            Command(
                "metrics_asset",
                f"metrics asset BUSY ({info['busy_asset_materializations']:,} mat.)",
                ["metrics", "asset", asset, "--home", "{home}"],
                duck=asset_sql(p, asset),
                check=lambda out: asset in out,
            ),
        ]
    return [
        *found,
        Command(
            "logs_errors",
            "logs --level ERROR --since 1h",
            ["logs", "--level", "ERROR", "--since", "1h", "--home", "{home}"],
            duck=[
                f"SELECT * FROM {p['logs']} WHERE level >= 40 AND time >= {now - 3600!r} {newest}"
            ],
            check=lambda out: "ERROR" in out,
        ),
        Command(
            "logs_grep",
            "logs --grep timeout --since 7d",
            ["logs", "--grep", "timeout", "--since", "7d", "--home", "{home}"],
            duck=[
                f"SELECT * FROM {p['logs']} WHERE time >= {now - 7 * DAY!r} AND "
                "(lower(message) LIKE '%timeout%' OR lower(attributes) LIKE '%timeout%') "
                f"{newest}"
            ],
            check=lambda out: "timed out" in out,
        ),
        Command(
            "logs_run",
            "logs --run-id RUN",
            ["logs", "--run-id", run_id, "--home", "{home}"],
            duck=[f"SELECT * FROM {p['logs']} WHERE run_id = '{run_id}' {newest}"],
            check=lambda out: out.count("\n") >= 3,
        ),
        Command(
            "lineage_impact",
            f"lineage impact ROOT ({info['lineage_root_downstream']:,} downstream)",
            ["lineage", "impact", root, "--home", "{home}"],
            duck=[impact_sql(p, root)],
            check=lambda out: "Total impact" in out,
        ),
        Command("help", "--help", ["--help"], check=lambda out: "logs" in out),
    ]


def summary_sql(p: dict[str, str], since: float) -> list[str]:
    """What lakelens.analysis.summary reads for the window [since, now), query for query."""
    m, r, c, a = p["materializations"], p["runs"], p["check_results"], p["assets"]
    window = f"start_time >= {since!r}"
    failures = f"FROM {m} WHERE status = 'failure' AND {window}"
    return [
        f"SELECT coalesce(sum(rows), 0), coalesce(sum(bytes), 0) FROM {m} WHERE {window}",
        f"SELECT status, count(*) FROM {r} WHERE {window} GROUP BY status",
        f"SELECT count(*), quantile_cont(duration, [0.5, 0.95, 0.99]) FROM {m} "
        f"WHERE {window} AND duration IS NOT NULL",
        f"SELECT name, last_status, last_success_time, freshness_seconds FROM {a}",
        f"SELECT count(DISTINCT asset) FROM {m} WHERE {window}",
        f"SELECT DISTINCT c.asset FROM {c} c JOIN {a} a "
        "ON c.run_id = a.last_run_id AND c.asset = a.name WHERE c.passed = 0",
        f"SELECT count(*), coalesce(sum(1 - passed), 0) FROM {c} WHERE time >= {since!r}",
        f"SELECT coalesce(error_type, 'unknown'), count(*) {failures} GROUP BY error_type",
        f"SELECT asset, count(*) {failures} GROUP BY asset",
        f"SELECT m.asset, coalesce(sum(m.rows), 0), count(*), a.expected_rows FROM {m} m "
        f"JOIN {a} a ON a.name = m.asset WHERE a.expected_rows > 0 AND m.status = 'success' "
        f"AND m.{window} GROUP BY m.asset, a.expected_rows",
    ]


def asset_sql(p: dict[str, str], asset: str) -> list[str]:
    """What lakelens.analysis.asset_metrics reads: the asset, its last 20 runs, lineage, checks."""
    m, c, e = p["materializations"], p["check_results"], p["lineage_edges"]
    last = f"SELECT * FROM {m} WHERE asset = '{asset}' ORDER BY start_time DESC, id DESC LIMIT 20"
    return [
        f"SELECT * FROM {p['assets']} WHERE name = '{asset}'",
        last,
        f"SELECT count(DISTINCT upstream) FROM {e} WHERE downstream = '{asset}'",
        f"SELECT count(DISTINCT downstream) FROM {e} WHERE upstream = '{asset}'",
        f"SELECT name, severity, passed, value, time FROM {c} WHERE asset = '{asset}' "
        f"AND run_id IN (SELECT run_id FROM ({last})) ORDER BY name, time",
    ]


def impact_sql(p: dict[str, str], root: str) -> str:
    """Everything downstream of `root` with its shortest depth, kind and owner."""
    return f"""
        WITH RECURSIVE edges AS (SELECT DISTINCT upstream, downstream FROM {p["lineage_edges"]}),
        reach(name, depth) AS (
          SELECT '{root}', 0
          UNION
          SELECT e.downstream, r.depth + 1 FROM reach r JOIN edges e ON e.upstream = r.name)
        SELECT name, min(depth) AS depth, any_value(a.kind), any_value(a.owner)
        FROM reach LEFT JOIN {p["assets"]} a USING (name)
        WHERE name <> '{root}' GROUP BY name ORDER BY depth, name"""


# A fresh interpreter per repetition, like the CLI: it prints the queries' own time and rows.
DUCK_CHILD = """
import sys, time
import duckdb
con = duckdb.connect()
start = time.perf_counter()
rows = sum(len(con.execute(sql).fetchall()) for sql in sys.argv[1:])
print(f"{(time.perf_counter() - start) * 1000:.3f} {rows}")
"""


def time_duckdb(statements: list[str], reps: int, cwd: Path) -> dict[str, Any]:
    argv = [sys.executable, "-c", DUCK_CHILD, *statements]
    run_once(argv, cwd)  # warm-up, not counted
    walls, queries, rows = [], [], 0
    for _ in range(reps):
        wall, done = run_once(argv, cwd)
        if done.returncode:
            raise SystemExit(f"DuckDB query failed:\n{done.stderr}")
        query_ms, found = done.stdout.split()
        walls.append(wall)
        queries.append(float(query_ms))
        rows = int(found)
    return {"wall_ms": median_of(walls), "query_ms": median_of(queries), "rows": rows}


def time_argvs(
    argvs: Sequence[list[str]],
    reps: int,
    cwd: Path,
    check: Callable[[str], bool] | None,
    envs: Sequence[dict[str, str] | None] | None = None,
) -> list[dict[str, Any]]:
    """Median wall-clock of each argv over `reps` runs, after one unrecorded warm-up each.

    The argvs take turns (in rotating order), so that a noisy neighbour slows them all alike.
    `check` looks at the output of lakelens' own runs (not at the references').
    """
    envs = envs or [None] * len(argvs)
    firsts = [run_once(argv, cwd, env)[1] for argv, env in zip(argvs, envs, strict=True)]
    samples: list[list[float]] = [[] for _ in argvs]
    failed: dict[int, subprocess.CompletedProcess[str]] = {
        i: done for i, done in enumerate(firsts) if done.returncode
    }
    turns = list(range(len(argvs)))
    for rep in range(reps):
        shift = rep % len(turns)
        for i in turns[shift:] + turns[:shift]:
            if i in failed:
                continue
            wall, done = run_once(argvs[i], cwd, envs[i])
            if done.returncode:
                failed[i] = done
            samples[i].append(wall)
    results: list[dict[str, Any]] = []
    for i, first in enumerate(firsts):
        if i in failed:
            error = failed[i].stderr or failed[i].stdout
            results.append({"error": error.strip().splitlines()[-1:]})
            continue
        found: dict[str, Any] = {
            "wall_ms": median_of(samples[i]),
            "output_lines": first.stdout.count("\n"),
        }
        is_ours = argvs[i][0] == str(BIN / "lakelens")
        if is_ours and check is not None and not check(first.stdout):
            found["suspect_output"] = first.stdout[:400]
        results.append(found)
    return results


def reference_runs(
    command: Command, home: Path, pg_url: str | None, data: Path
) -> tuple[dict[str, tuple[list[str], dict[str, str] | None]], dict[str, int]]:
    """`sqlite3` (and `psql`) running the SQL the command reads, captured on each store; and
    how many statements each script holds."""
    folder = data / "reference"
    folder.mkdir(exist_ok=True)
    args = command.argv(home)[1:]
    stores = [("sqlite3", "sqlite", None, str(home / "lakelens.db"))]
    if pg_url:
        stores.append(("psql", "postgresql", pg_url, pg_url))
    runs: dict[str, tuple[list[str], dict[str, str] | None]] = {}
    counts: dict[str, int] = {}
    for client, dialect, url, target in stores:
        statements = capture(args, environment(url), data)
        path = folder / f"{command.key}.{dialect}.sql"
        path.write_text(script(statements, dialect))
        runs[client] = (client_argv(dialect, target, path), None)
        counts[client] = len(statements)
    return runs, counts


def analyzed_copy(db: Path, target: Path) -> float:
    """A copy of the store after ANALYZE (what `PRAGMA optimize` would give the query planner)."""
    started = time.perf_counter()
    shutil.rmtree(target.parent, ignore_errors=True)
    target.parent.mkdir(parents=True)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    shutil.copyfile(db, target)
    conn = sqlite3.connect(target)
    conn.execute("ANALYZE")
    conn.commit()
    conn.close()
    return time.perf_counter() - started


# -- phlo ----------------------------------------------------------------------------------------
def phlo_bin(data: Path) -> tuple[Path | None, str]:
    """`phlo` from its own virtualenv under `data`, installed on first use."""
    venv = data / "phlo-venv"
    exe = venv / "bin" / "phlo"
    if exe.exists():
        return exe, ""
    say("installing phlo into its own virtualenv ...")
    python = shutil.which("python3") or sys.executable
    steps = ([python, "-m", "venv", str(venv)], [str(venv / "bin" / "pip"), "install", "phlo"])
    for argv in steps:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode:
            shutil.rmtree(venv, ignore_errors=True)
            reason = " / ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            return None, f"`{' '.join(argv[-3:])}` failed: {reason}"
    return (exe, "") if exe.exists() else (None, "pip installed phlo but it has no `phlo` script")


def phlo_version(exe: Path) -> str | None:
    code = "import importlib.metadata as m; print(m.version('phlo'))"
    done = subprocess.run(
        [str(exe.parent / "python"), "-c", code], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or None


# -- report --------------------------------------------------------------------------------------
def machine(pg_url: str | None) -> dict[str, Any]:
    import sqlalchemy

    try:
        import duckdb

        duck = duckdb.__version__
    except ImportError:
        duck = None
    postgres = None
    if pg_url:
        import psycopg

        with psycopg.connect(pg_url) as conn:
            postgres = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": os.getloadavg()[0],
        "lakelens": lakelens.__version__,
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
        "duckdb": duck,
        "postgresql": postgres,
    }


def verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def goals(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for key, entry in results["commands"].items():
        value = entry.get("wall_ms", {}).get("median")
        if value is not None:
            state = verdict(value < COMMAND_GOAL_MS)
        else:
            state = "MISSING" if entry.get("missing") else "ERROR"
        found[key] = {"value": value, "goal": f"< {COMMAND_GOAL_MS:.0f} ms", "verdict": state}
    for key, entry in results["postgres"].items():
        pg = entry.get("wall_ms", {}).get("median")
        lite = results["commands"][key].get("wall_ms", {}).get("median")
        ratio = pg / lite if pg is not None and lite else None
        state = "ERROR" if ratio is None else verdict(ratio < PG_RATIO_GOAL and pg < PG_GOAL_MS)
        found[f"postgres_{key}"] = {
            "value": ratio,
            "postgres_ms": pg,
            "goal": f"< {PG_RATIO_GOAL:.0f}x SQLite, < {PG_GOAL_MS:.0f} ms",
            "verdict": state,
        }
    phlo, ours = results["phlo"], results["commands"].get("help", {})
    ratio = None
    if "wall_ms" in phlo and "wall_ms" in ours:
        ratio = phlo["wall_ms"]["median"] / ours["wall_ms"]["median"]
    found["help_vs_phlo"] = {
        "value": ratio,
        "goal": f">= {HELP_GOAL:.0f}x",
        "verdict": "SKIP" if ratio is None else verdict(ratio >= HELP_GOAL),
    }
    return found


def fmt_ms(cell: dict[str, float] | None) -> str:
    if not cell:
        return "-"
    return f"{cell['median']:,.0f} ({cell['min']:,.0f}–{cell['max']:,.0f})"


def print_report(results: dict[str, Any]) -> None:
    info, store = results["machine"], results["store"]
    print(
        f"lakelens {info['lakelens']} query latency: {info['cpus']} CPUs, Python {info['python']}, "
        f"SQLite {info['sqlite']}, DuckDB {info['duckdb']}, {info['date']}, "
        f"load average {info['load_average']:.1f}"
    )
    n = store["counts"]
    print(
        f"store: {n['materializations']:,} materializations ({n['failed_materializations']:,} "
        f"failed), {n['runs']:,} runs, {n['check_results']:,} check results, {n['logs']:,} logs, "
        f"{n['assets']:,} assets, {n['lineage_edges']:,} lineage edges"
    )
    print(
        f"       {store['file_bytes'] / 1e9:.2f} GB, built in {store['build_seconds']:.0f} s"
        + (
            f"; shifted to now in {results['shift_seconds']:.0f} s"
            if results["shift_seconds"]
            else ""
        )
        + (f"; ANALYZE copy in {results['analyze_seconds']:.0f} s" if results["analyzed"] else "")
    )
    print(f"{results['reps']} timed runs each after one warm-up; median (min–max) ms\n")
    after = "after ANALYZE" if results["analyzed"] else ""
    print(f"{'lakelens ...':40} {'wall':>16} {after:>16} {'DuckDB wall':>16} {'DuckDB query':>14}")
    for key, entry in results["commands"].items():
        goal = results["goals"][key]["verdict"]
        if "wall_ms" not in entry:
            print(f"{entry['label']:40} {goal:>16}  {entry.get('reason') or entry.get('error')}")
            continue
        duck = results["duckdb"].get(key, {})
        analyzed = results["analyzed"].get(key, {}).get("wall_ms")
        print(
            f"{entry['label']:40} {fmt_ms(entry['wall_ms']):>16} {fmt_ms(analyzed) if after else '':>16} "
            f"{fmt_ms(duck.get('wall_ms')):>16} {fmt_ms(duck.get('query_ms')):>14}  {goal}"
        )
        if entry.get("suspect_output"):
            print(f"    unexpected output: {entry['suspect_output'][:200]!r}")
    phlo = results["phlo"]
    if "wall_ms" in phlo:
        print(
            f"{'phlo --help (phlo ' + str(phlo['version']) + ')':40} {fmt_ms(phlo['wall_ms']):>16}"
        )
    else:
        print(f"phlo --help: not measured: {phlo.get('reason') or phlo.get('error')}")
    print_references(results)
    print("\nGoals")
    for key, entry in results["goals"].items():
        value = entry["value"]
        if key.startswith("postgres_"):
            label = "PostgreSQL ÷ SQLite: " + results["commands"][key[9:]]["label"]
            ms = entry["postgres_ms"]
            shown = "-" if value is None else f"{value:.2f}x {ms:.0f} ms"
        elif key == "help_vs_phlo":
            label, shown = (
                "phlo --help / lakelens --help",
                "-" if value is None else f"{value:.2f}x",
            )
        else:
            label, shown = (
                results["commands"][key]["label"],
                "-" if value is None else f"{value:.0f} ms",
            )
        print(f"   {label:40} {shown:>10}   goal {entry['goal']:<9} {entry['verdict']}")


def ratio_text(top: dict[str, Any] | None, bottom: dict[str, Any] | None) -> str:
    if not top or not bottom or "wall_ms" not in top or "wall_ms" not in bottom:
        return "-"
    return f"{top['wall_ms']['median'] / bottom['wall_ms']['median']:.2f}x"


def print_references(results: dict[str, Any]) -> None:
    """Each command against the same SQL run by the database's own client, and PG ÷ SQLite."""
    if not results["reference"]:
        return
    pg = bool(results["postgres"])
    print("\nThe same SQL run by the database's own client (the reference); median ms")
    head = f"{'lakelens ...':40} {'SQLite':>7} {'sqlite3':>8} {'÷':>6}"
    if pg:
        head += f" {'PostgreSQL':>10} {'psql':>6} {'÷':>6} {'PG ÷ SQLite':>11}"
    print(head)
    for key, refs in results["reference"].items():
        lite = results["commands"][key]
        line = (
            f"{lite['label']:40} {ms_text(lite):>7} {ms_text(refs.get('sqlite3')):>8} "
            f"{ratio_text(lite, refs.get('sqlite3')):>6}"
        )
        if pg:
            ours = results["postgres"].get(key)
            line += (
                f" {ms_text(ours):>10} {ms_text(refs.get('psql')):>6} "
                f"{ratio_text(ours, refs.get('psql')):>6} {ratio_text(ours, lite):>11}"
            )
        print(line)
        for name, entry in [("PostgreSQL", results["postgres"].get(key)), *refs.items()]:
            if entry and "error" in entry:
                print(f"    {name} failed: {entry['error']}")


def ms_text(entry: dict[str, Any] | None) -> str:
    if not entry or "wall_ms" not in entry:
        return "-"
    return f"{entry['wall_ms']['median']:,.0f}"


# -- main ----------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small store: a smoke run")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--data", type=Path, default=ROOT / ".bench-data", help="cache directory (.bench-data/)"
    )
    parser.add_argument("--rebuild", action="store_true", help="build the store even if cached")
    parser.add_argument("--reps", type=int, help="timed runs per command (default 7, quick 5)")
    parser.add_argument(
        "--analyze",
        action="store_true",
        help="also time the commands on a copy of the store after ANALYZE (4 GB more disk)",
    )
    add_database_url(parser, "also time every command on a copy of the store there")
    parser.add_argument(
        "--keep-times",
        action="store_true",
        help="leave a cached store's times as they are, however old (shifting them to now "
        "makes the PostgreSQL copy again: 9 minutes for the full store on 2 busy cores)",
    )
    args = parser.parse_args(argv)
    if args.keep_times:
        bigstore.FRESH_SECONDS = math.inf
    sizes = QUICK if args.quick else FULL
    reps = args.reps or (QUICK_REPS if args.quick else REPS)
    data = (args.data / ("quick" if args.quick else "full")).resolve()
    data.mkdir(parents=True, exist_ok=True)
    info, shifted = prepare(data, sizes, args.rebuild)
    home, parquet = data / "home", data / "parquet"
    load = os.getloadavg()[0]

    pg_url = None
    if args.database_url:
        label = "quick" if args.quick else "full"
        pg_url = prepare_postgres(args.database_url, home / "lakelens.db", info, label)

    results: dict[str, Any] = {"commands": {}, "duckdb": {}, "analyzed": {}, "postgres": {}}
    results["reference"] = {}
    if pg_url:
        exe, reason = None, "not run beside PostgreSQL (it does not read the store)"
    else:
        exe, reason = phlo_bin(args.data.resolve())
    results["phlo"] = {"reason": reason} if exe is None else {"version": phlo_version(exe)}
    copy = data / "analyzed" / "lakelens.db"
    if args.analyze:
        say("copying the store and running ANALYZE on the copy ...")
        results["analyze_seconds"] = analyzed_copy(home / "lakelens.db", copy)

    # `lakelens metrics` was being written with this benchmark: if it is missing, the other
    # commands are timed first, then it is looked for once more.
    help_text = metrics_help(data)
    for _ in range(2):
        for command in commands(info, parquet, help_text):
            if command.key in results["commands"]:
                continue
            say(f"timing lakelens {command.label} ...")
            # All take turns: lakelens on each store, the references, phlo or the copy.
            runs: dict[str, tuple[list[str], dict[str, str] | None]] = {
                "sqlite": (command.argv(home), None)
            }
            if pg_url:
                runs["postgres"] = (command.argv(home), environment(pg_url))
            if command.key == "help" and exe is not None:
                runs["phlo"] = ([str(exe), "--help"], None)
            elif command.key != "help":
                references, statements = reference_runs(command, home, pg_url, data)
                runs |= references
                if args.analyze:
                    runs["analyzed"] = (command.argv(copy.parent), None)
            found = dict(
                zip(
                    runs,
                    time_argvs(
                        [argv for argv, _ in runs.values()],
                        reps,
                        data,
                        command.check,
                        [env for _, env in runs.values()],
                    ),
                    strict=True,
                )
            )
            results["commands"][command.key] = {"label": command.label, **found["sqlite"]}
            if "phlo" in found:
                results["phlo"] |= found["phlo"]
            for name in ("postgres", "analyzed"):
                if name in found:
                    results[name][command.key] = found[name]
            for name in ("sqlite3", "psql"):
                if name in found:
                    measured = found[name] | {"statements": statements[name]}
                    results["reference"].setdefault(command.key, {})[name] = measured
            if command.duck and not pg_url:
                results["duckdb"][command.key] = time_duckdb(command.duck, reps, data)
        if help_text is not None or (help_text := metrics_help(data)) is None:
            break
    shutil.rmtree(copy.parent, ignore_errors=True)
    order = [c.key for c in commands(info, parquet, "")]
    for key in order:
        results["commands"].setdefault(
            key, {"label": key.replace("_", " "), "missing": True, "reason": "not a command yet"}
        )
    results["commands"] = {key: results["commands"][key] for key in order}

    results |= {
        "machine": machine(pg_url) | {"load_average_before": load},
        "reps": reps,
        "store": {k: v for k, v in info.items() if k != "version"},
        "shift_seconds": shifted,
    }
    results["goals"] = goals(results)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_report(results)
    return 0 if all(g["verdict"] == "PASS" for g in results["goals"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
