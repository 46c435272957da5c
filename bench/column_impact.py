"""Column-level lineage: impact of one column on a 10,000-asset graph, and dbt import cost.

    .venv/bin/python bench/column_impact.py                # about a minute
    .venv/bin/python bench/column_impact.py --quick        # smaller graph and project, a few seconds
    .venv/bin/python bench/column_impact.py --only impact  # part 1 alone

1. A SQLite store holds 10,000 assets of 20 columns; each asset after the first reads one to
   three earlier ones, every column from the same-named columns of its parents. The column
   impact of `a0.c0` (the root: it reaches every asset) is timed warm, beside the table-level
   impact of `a0`. Goal: column impact <= 50 ms warm. Also timed, on the same graph with
   every edge filtered by its parent's `c1` (a dataset-wide input, OpenLineage 1-2-0): the
   impact of `a0.c1`, which reaches every `c1` and every asset indirectly.
2. A synthetic 500-model dbt project (manifest.json + run_results.json with compiled SQL:
   CTEs, joins, expressions, aggregates, one `select *` in ten) is imported into fresh SQLite
   stores with and without column lineage: in this process (serially, with a worker process
   per core, and with the head start the CLI forks) and as `lakelens import dbt` (the command
   users run, start-up included; its CPU time, children included, is shown too: on a busy
   machine it says what two idle cores would give). Goal: with <= 2x without. Also timed:
   the CPU of deriving the project serially, with lakelens' own column resolver and with
   sqlglot's `qualify` alone (what the resolver falls back to), taking turns.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

IMPACT_GOAL_MS = 50.0
IMPORT_GOAL_RATIO = 2.0
# The lakelens command of the Python running this bench (the same install it imports).
LAKELENS = str(Path(sys.executable).with_name("lakelens"))


def _graph_store(path: Path, assets: int, columns: int) -> str:
    from lakelens.events import Batch
    from lakelens.model import Asset, LineageEdge
    from lakelens.store import Store

    rng = random.Random(17)
    url = f"sqlite:///{path}"
    store = Store(url)
    cols = [f"c{i}" for i in range(columns)]
    batch = Batch()
    for i in range(assets):
        batch.assets.append(Asset(name=f"a{i}", kind="model"))
        if i == 0:
            continue
        parents = {rng.randrange(max(0, i - 50), i) for _ in range(rng.randint(1, 3))}
        for parent in sorted(parents):
            mapping = {c: [c] for c in cols}
            batch.edges.append(LineageEdge(f"a{parent}", f"a{i}", "dbt", mapping))
    store.write(batch)
    store.close()
    return url


def bench_impact(assets: int, columns: int, repeat: int) -> dict[str, Any]:
    from lakelens.analysis.column_lineage import column_impact, column_index
    from lakelens.analysis.lineage import impact, load_graph
    from lakelens.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        url = _graph_store(Path(tmp) / "graph.db", assets, columns)
        store = Store(url)
        with store.connect() as conn:
            started = time.perf_counter()
            graph = load_graph(conn)
            load_ms = (time.perf_counter() - started) * 1000
        store.close()
    started = time.perf_counter()
    column_index(graph)
    index_ms = (time.perf_counter() - started) * 1000
    filtered = _filtered(graph)
    column_index(filtered)
    column_times, table_times, indirect_times = [], [], []
    found = column_impact(graph, "a0", "c0")
    indirect = column_impact(filtered, "a0", "c1")
    for _ in range(repeat):
        started = time.perf_counter()
        found = column_impact(graph, "a0", "c0")
        column_times.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        table = impact(graph, "a0")
        table_times.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        indirect = column_impact(filtered, "a0", "c1")
        indirect_times.append((time.perf_counter() - started) * 1000)
    return {
        "assets": assets,
        "columns_per_asset": columns,
        "edges": len(graph.edges()),
        "load_graph_ms": round(load_ms, 1),
        "column_index_build_ms": round(index_ms, 1),
        "column_impact_ms": _spread(column_times),
        "table_impact_ms": _spread(table_times),
        "columns_reached": len(found.columns),
        "assets_reached": len(table.affected_assets),
        "indirect_impact_ms": _spread(indirect_times),
        "indirect_assets_reached": len(indirect.indirect),
    }


def _filtered(graph: Any) -> Any:
    """The graph with each edge's rows filtered by its upstream's c1 (a dataset-wide input)."""
    from lakelens.analysis.lineage import LineageGraph

    where = {"column": "c1", "transformations": [{"type": "INDIRECT", "subtype": "FILTER"}]}
    return LineageGraph(
        nodes=graph.nodes,
        upstream=graph.upstream,
        downstream=graph.downstream,
        columns=graph.columns,
        column_details={edge: {"dataset": [where]} for edge in graph.columns},
    )


# -- a synthetic dbt project ----------------------------------------------------------------

_EXPRESSIONS = ("{a}.{c}", "{a}.{c} * 2", "coalesce({a}.{c}, 0)", "upper(cast({a}.{c} as text))")


def _project(models: int, sources: int, columns: int) -> tuple[dict[str, Any], dict[str, Any]]:
    rng = random.Random(500)
    now = datetime(2026, 11, 24, 6, 0, tzinfo=timezone.utc).isoformat().replace("+00:00", "Z")
    invocation = "00000000-0000-4000-8000-000000000500"
    cols = [f"c{i}" for i in range(columns)]
    relation = '"warehouse"."{schema}"."{name}"'
    manifest: dict[str, Any] = {
        "metadata": {
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json",
            "dbt_version": "1.12.0",
            "generated_at": now,
            "invocation_id": invocation,
            "project_name": "bench",
            "adapter_type": "duckdb",
        },
        "nodes": {},
        "sources": {},
    }
    for s in range(sources):
        uid = f"source.bench.raw.t{s}"
        manifest["sources"][uid] = {
            "unique_id": uid,
            "resource_type": "source",
            "name": f"t{s}",
            "source_name": "raw",
            "package_name": "bench",
            "relation_name": relation.format(schema="raw", name=f"t{s}"),
            "columns": {c: {"name": c, "data_type": "integer"} for c in cols},
        }
    ids = list(manifest["sources"])
    results = []
    for m in range(models):
        uid = f"model.bench.m{m}"
        parents = rng.sample(ids[-60:], k=min(len(ids[-60:]), rng.randint(1, 3)))
        aliases = {p: f"p{i}" for i, p in enumerate(parents)}
        froms = [
            f"{manifest['nodes'].get(p, manifest['sources'].get(p))['relation_name']} {aliases[p]}"
            for p in parents
        ]
        if m % 10 == 9 and len(parents) == 1:
            sql = f"select * from {froms[0]}"
        else:
            picks = [
                rng.choice(_EXPRESSIONS).format(a=aliases[rng.choice(parents)], c=c) + f" as {c}"
                for c in cols
            ]
            joins = "".join(
                f" left join {f} on {aliases[parents[0]]}.c0 = {aliases[p]}.c0"
                for p, f in zip(parents[1:], froms[1:], strict=True)
            )
            sql = (
                f"with base as (select {', '.join(picks)} from {froms[0]}{joins} "
                f"where {aliases[parents[0]]}.c1 > 0)\n"
                f"select {', '.join(cols[:-1])}, sum({cols[-1]}) as {cols[-1]} from base "
                f"group by {', '.join(cols[:-1])}"
            )
        manifest["nodes"][uid] = {
            "unique_id": uid,
            "resource_type": "model",
            "name": f"m{m}",
            "package_name": "bench",
            "path": f"layer{m % 5}/m{m}.sql",
            "relation_name": relation.format(schema="main", name=f"m{m}"),
            "config": {"materialized": "table"},
            "depends_on": {"nodes": parents},
            "columns": {},
            "compiled_code": sql,
        }
        ids.append(uid)
        results.append(
            {
                "unique_id": uid,
                "status": "success",
                "timing": [
                    {"name": "execute", "started_at": now, "completed_at": now},
                ],
                "execution_time": 0.1,
                "adapter_response": {"rows_affected": 100},
                "message": "OK",
            }
        )
    run_results = {
        "metadata": {
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json",
            "dbt_version": "1.12.0",
            "generated_at": now,
            "invocation_id": invocation,
        },
        "results": results,
        "elapsed_time": 60.0,
        "args": {"which": "run", "invocation_command": "dbt run"},
    }
    return manifest, run_results


def bench_import(models: int, repeat: int, before: str | None = None) -> dict[str, Any]:
    """In this process (serial, and with a worker per core) and as the CLI command a user runs
    (start-up included), with and without column lineage, taking turns."""
    from lakelens.integrations.dbt import import_artifacts
    from lakelens.integrations.dbt_column_jobs import Ahead
    from lakelens.store import Store

    manifest, run_results = _project(models, sources=20, columns=20)
    modes = ("without", "serial", "pool", "ahead")
    times: dict[str, list[float]] = {m: [] for m in modes}
    runs: list[tuple[str, list[str], str | None]] = [
        ("without", ["--no-column-lineage"], None),
        ("with", [], None),
    ]
    if before:  # the same command with another checkout's sources, taking turns
        runs.append(("before", [], before))
    cli: dict[str, list[float]] = {mode: [] for mode, _, _ in runs}
    cli_cpu: dict[str, list[float]] = {mode: [] for mode, _, _ in runs}
    _adopt_orphans()
    result = None
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "target"
        target.mkdir()
        (target / "manifest.json").write_text(json.dumps(manifest))
        (target / "run_results.json").write_text(json.dumps(run_results))
        # sqlglot's first parse loads its dialect and tables: paid once per process, not timed.
        import_artifacts(target, store=Store(f"sqlite:///{tmp}/warm.db"))
        for rep in range(repeat):
            for mode in modes:  # taking turns, so a noisy neighbour slows all of them
                store = Store(f"sqlite:///{tmp}/s{rep}{mode}.db")
                started = time.perf_counter()
                ahead = Ahead.begin(target, None) if mode == "ahead" else None
                got = import_artifacts(
                    target,
                    store=store,
                    column_lineage=mode != "without",
                    workers=None if mode == "pool" else 1,
                    ahead=ahead,
                )
                times[mode].append(time.perf_counter() - started)
                store.close()
                if mode == "serial":
                    result = got
            for mode, flags, sources in runs:
                home = Path(tmp) / f"cli{rep}{mode}"
                command = [LAKELENS, "import", "dbt", str(target), "--home", str(home), "--json"]
                spent = _children_cpu()
                started = time.perf_counter()
                env = {**os.environ, "PYTHONPATH": sources} if sources else None
                subprocess.run([*command, *flags], check=True, capture_output=True, env=env)
                cli[mode].append(time.perf_counter() - started)
                _reap()
                cli_cpu[mode].append(_children_cpu() - spent)
    assert result is not None
    median = {m: statistics.median(v) for m, v in times.items()}
    return {
        "models": models,
        "cores": os.cpu_count(),
        **_derive_cpu(manifest, repeat),
        "import_without_s": _spread(times["without"], 3),
        "import_with_s": _spread(times["serial"], 3),
        "import_with_pool_s": _spread(times["pool"], 3),
        "ratio": round(median["serial"] / median["without"], 2),
        "ratio_pool": round(median["pool"] / median["without"], 2),
        "import_with_ahead_s": _spread(times["ahead"], 3),
        "ratio_ahead": round(median["ahead"] / median["without"], 2),
        "cli_without_s": _spread(cli["without"], 3),
        "cli_with_s": _spread(cli["with"], 3),
        "ratio_cli": round(statistics.median(cli["with"]) / statistics.median(cli["without"]), 2),
        **(
            {
                "cli_before_s": _spread(cli["before"], 3),
                "ratio_cli_before": round(
                    statistics.median(cli["before"]) / statistics.median(cli["without"]), 2
                ),
                "cli_cpu_before_s": _spread(cli_cpu["before"], 3),
            }
            if before
            else {}
        ),
        "cli_cpu_without_s": _spread(cli_cpu["without"], 3),
        "cli_cpu_with_s": _spread(cli_cpu["with"], 3),
        # The wall time two idle cores would need at least: the CPU shared by both, and never
        # less than the command without column lineage (start-up, store, conversion).
        "ratio_cli_two_idle_cores": round(
            max(statistics.median(cli_cpu["with"]) / 2, statistics.median(cli_cpu["without"]))
            / statistics.median(cli_cpu["without"]),
            2,
        ),
        "column_edges": result.column_edges,
        "unresolved": len(result.unresolved_columns),
    }


def _derive_cpu(manifest: dict[str, Any], repeat: int) -> dict[str, Any]:
    """CPU of deriving the project serially in this process, with lakelens' own resolver and
    with sqlglot's `qualify` alone (the fallback), taking turns: what the resolver saves."""
    import functools

    from lakelens.integrations import dbt_columns

    names = {
        uid: node["name"] for key in ("nodes", "sources") for uid, node in manifest[key].items()
    }
    real = dbt_columns.derive_one
    spent: dict[str, list[float]] = {"own": [], "qualify": []}
    try:
        for _ in range(repeat):
            for mode in spent:
                dbt_columns.derive_one = functools.partial(real, own=mode == "own")  # type: ignore[assignment]
                started = time.process_time()
                dbt_columns.derive(manifest, names, workers=1)
                spent[mode].append(time.process_time() - started)
    finally:
        dbt_columns.derive_one = real  # type: ignore[assignment]
    return {
        "derive_cpu_own_s": _spread(spent["own"], 3),
        "derive_cpu_qualify_s": _spread(spent["qualify"], 3),
        "ratio_derive_own": round(
            statistics.median(spent["own"]) / statistics.median(spent["qualify"]), 2
        ),
    }


def _adopt_orphans() -> None:
    """Be the reaper of this process's orphaned descendants (Linux), so the CPU of every
    process a command starts (a forkserver, a pool) counts in `_children_cpu`."""
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _reap(quiet: float = 0.3) -> None:
    """Wait for the descendants the last command left behind (a forkserver and its workers end
    soon after it): until none has ended for `quiet` seconds. This process's own children (the
    in-process pool's forkserver) stay."""
    last = time.monotonic()
    while time.monotonic() - last < quiet:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid:
            last = time.monotonic()
        else:
            time.sleep(0.01)


def _children_cpu() -> float:
    """User and system CPU seconds of the finished child processes (and theirs) so far."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _spread(values: list[float], digits: int = 2) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small graph and project")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--before",
        metavar="SRC",
        help="also run `lakelens import dbt` with these sources on PYTHONPATH (another "
        "checkout's src/, e.g. from `git archive COMMIT src`), taking turns",
    )
    parser.add_argument(
        "--only", choices=("impact", "import"), help="run one part: column impact or dbt import"
    )
    args = parser.parse_args(argv)
    assets, models, repeat = (1_000, 50, 3) if args.quick else (10_000, 500, 5)
    figures: dict[str, Any] = {}
    if args.only in (None, "impact"):
        figures["impact"] = bench_impact(assets, 20, repeat=repeat * 4)
    if args.only in (None, "import"):
        figures["dbt_import"] = bench_import(models, repeat=repeat, before=args.before)
    if args.json:
        print(json.dumps(figures, indent=2))
    if "impact" in figures and not args.json:
        i = figures["impact"]
        print(
            f"Graph: {i['assets']:,} assets x {i['columns_per_asset']} columns, {i['edges']:,} "
            f"edges (load {i['load_graph_ms']} ms, column index {i['column_index_build_ms']} ms)"
        )
        print(
            f"  column impact a0.c0: {i['column_impact_ms']['median']} ms median "
            f"({i['column_impact_ms']['min']}-{i['column_impact_ms']['max']}), "
            f"{i['columns_reached']:,} columns; goal <= {IMPACT_GOAL_MS:.0f} ms"
        )
        print(
            f"  table impact a0:     {i['table_impact_ms']['median']} ms median, "
            f"{i['assets_reached']:,} assets"
        )
        print(
            f"  column impact a0.c1, every edge filtered by c1: "
            f"{i['indirect_impact_ms']['median']} ms median, "
            f"{i['indirect_assets_reached']:,} assets indirectly"
        )
    if "dbt_import" in figures and not args.json:
        d = figures["dbt_import"]
        print(
            f"dbt import of {d['models']} models ({d['column_edges']} edges with columns, "
            f"{d['unresolved']} models unresolved), {d['cores']} cores; goal <= "
            f"x{IMPORT_GOAL_RATIO:.0f}:"
        )
        print(
            f"  deriving the project serially, CPU: {d['derive_cpu_own_s']['median']} s with "
            f"lakelens' resolver, {d['derive_cpu_qualify_s']['median']} s through qualify "
            f"(x{d['ratio_derive_own']})"
        )
        print(
            f"  in process: without column lineage {d['import_without_s']['median']} s, "
            f"with {d['import_with_s']['median']} s (x{d['ratio']}), with a worker per core "
            f"{d['import_with_pool_s']['median']} s (x{d['ratio_pool']}), with the CLI's head start "
            f"{d['import_with_ahead_s']['median']} s (x{d['ratio_ahead']})"
        )
        print(
            f"  `lakelens import dbt` as run: without {d['cli_without_s']['median']} s, "
            f"with {d['cli_with_s']['median']} s (x{d['ratio_cli']}); CPU (children included) "
            f"{d['cli_cpu_without_s']['median']} s -> {d['cli_cpu_with_s']['median']} s, "
            f"on two idle cores at least x{d['ratio_cli_two_idle_cores']}"
        )
        if "cli_before_s" in d:
            print(
                f"  with --before's sources: {d['cli_before_s']['median']} s "
                f"(x{d['ratio_cli_before']}); CPU {d['cli_cpu_before_s']['median']} s"
            )
    ok = (
        "impact" not in figures or figures["impact"]["column_impact_ms"]["median"] <= IMPACT_GOAL_MS
    ) and ("dbt_import" not in figures or figures["dbt_import"]["ratio_cli"] <= IMPORT_GOAL_RATIO)
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    raise SystemExit(main())
