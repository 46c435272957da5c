"""Ingest throughput of `lakelens serve`: native events/s, OpenLineage events/s (one per request
on one connection, one per request on 8 connections, 100 per request), server RSS, and
impact analysis latency on a 10,000-node lineage graph.

The server runs on 127.0.0.1 with a fresh store (`--no-alerts`): a SQLite file, or a new
PostgreSQL database per run with `--database-url postgresql+psycopg://…` (or
LAKELENS_DATABASE_URL); `--stores sqlite,postgres` measures both in turn in one run. The
clients run in a second process (keep-alive), so both cores are shared as they would be on a
small machine.

    .venv/bin/python bench/ingest.py            # 15 s per phase, 3 runs (about 5 minutes)
    .venv/bin/python bench/ingest.py --quick    # 3 s per phase, 1 run
    .venv/bin/python bench/ingest.py --stores sqlite,postgres --quick
    .venv/bin/python bench/ingest.py --json
    .venv/bin/python bench/ingest.py --realistic   # 60-character log messages, 3 attributes

Every figure comes with a reference measured in the same run, so the goals are ratios that
hold from one machine to the next:
- native ingest ÷ the store's raw bulk insert of the same log rows (sqlite3 `executemany`,
  PostgreSQL `COPY`, one transaction per 500 rows): goal >= 0.5. Judged on the server-bound
  figure: the client encodes its body once before the clock starts and sends it again and
  again, as the reference inserts its one list of rows again and again. The figure with the
  client building and encoding every body (httpx) is printed beside it: on one connection the
  client's ~2 ms of encoding per body runs in series with the server's work, on the same cores;
- OpenLineage on 8 connections ÷ a bare ASGI endpoint (the same uvicorn settings, a handler that
  reads the body and answers `{}`) driven by the same client: goal >= 0.5;
- PostgreSQL ÷ SQLite for each figure when both stores are measured: goal >= 0.7.

Clients: httpx (one thread per connection), except the 8-connection OpenLineage phase and the
server-bound native phase, which use a plain asyncio HTTP/1.1 client: httpx costs the client
process more CPU per request than the server spends (~0.6 ms against ~0.4 ms), so with eight
httpx threads on two shared cores the client, not the server, sets the pace. The httpx
figures are reported too.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LAKELENS = str(Path(sys.executable).with_name("lakelens"))
# Ratios against references measured in the same run (see above); RSS and impact latency
# are per process and per graph, not per machine speed.
GOALS = {
    "native_server_bound_ratio": 0.5,
    "openlineage_8_conns_ratio": 0.5,
    "postgres_vs_sqlite": 0.7,
    "rss_mb": 200,
    "impact_ms": 50,
}
RATIO_KEYS = ("native_server_bound_ratio", "openlineage_8_conns_ratio")
# (result key, client mode, connections, label); every OpenLineage phase is judged on the goal.
PHASES = [
    ("native_events_per_s", "native", 1, "native events/s (batches of 500 logs, 1 conn.)"),
    (
        "native_server_bound_events_per_s",
        "native-raw",
        1,
        "  same, body encoded once, plain HTTP client",
    ),
    ("openlineage_events_per_s", "ol", 1, "OpenLineage RunEvents/s, 1 per request, 1 conn."),
    ("openlineage_8_conns_events_per_s", "ol-raw", 8, "OpenLineage, 1 per request, 8 conns"),
    (
        "openlineage_8_httpx_events_per_s",
        "ol",
        8,
        "  same, 8 httpx threads (client-bound)",
    ),
    ("openlineage_batched_events_per_s", "ol-batch", 1, "OpenLineage, 100 per request, 1 conn."),
]

_PHASE_NAMES = [key.split("_events")[0] for key, _mode, _conns, _label in PHASES]

# One native log record: "fetched rows" and one attribute, or with --realistic a 60-character
# message and three attributes (what the log search index costs depends on it). Run by the
# client process and by the raw-insert reference alike.
LOG_RECORD = textwrap.dedent(
    """
    def log_record(j, realistic):
        if not realistic:
            return "fetched rows", {"rows": j}
        message = f"loaded batch {j:05d} into raw.table_{j % 20:02d} from part-{j * 7919 % 10007:05d}"
        return message, {"rows": j * 37 % 100_000, "table": f"raw.table_{j % 20}", "ms": j * 13 % 5000}
    """
)
_REALISTIC = False  # --realistic

# One OpenLineage RunEvent of the OpenLineage phases (bench/writer.py writes the same).
RUN_EVENT = textwrap.dedent(
    """
    def run_event(run_id, event_type, i):
        return {
            "eventType": event_type,
            "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "producer": "https://example.com/bench",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "run": {"runId": run_id},
            "job": {"namespace": "bench", "name": f"job_{i % 20}"},
            "inputs": [{"namespace": "warehouse", "name": f"raw.table_{i % 20}"}],
            "outputs": [{"namespace": "warehouse", "name": f"stg.table_{i % 20}",
                         "outputFacets": {"outputStatistics": {
                             "_producer": "https://example.com/bench",
                             "_schemaURL": "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json",
                             "rowCount": 487, "size": 48700}}}],
        }
    """
)

CLIENT = (
    LOG_RECORD
    + RUN_EVENT
    + textwrap.dedent(
        """
    import asyncio, json, sys, threading, time, uuid
    import httpx
    bases, mode, seconds, conns = sys.argv[1].split(","), sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    realistic = sys.argv[5] == "realistic"

    sent = [0] * conns
    started, cpu_started = time.perf_counter(), time.process_time()

    def running():
        return time.perf_counter() - started < seconds

    def native_events(i):
        now = time.time()
        return [
            {"type": "log", "time": now, "level": 20, "message": message,
             "logger": "bench", "run_id": "bench-run", "asset": f"asset_{j % 50}",
             "attributes": attributes}
            for j in range(500)
            for message, attributes in [log_record(i * 500 + j, realistic)]
        ]

    def httpx_client(k):
        client = httpx.Client(base_url=bases[k % len(bases)], timeout=60)
        headers = {"Content-Type": "application/json"}
        i = k
        while running():
            if mode == "native":
                events = native_events(i)
                i += conns
                path, n = "/api/v1/events", 500
            elif mode == "ol-batch":
                events = []
                for j in range(50):
                    run_id = str(uuid.uuid4())
                    events += [run_event(run_id, "START", i + j), run_event(run_id, "COMPLETE", i + j)]
                path, n = "/api/v1/lineage", 100
                i += 50 * conns
            else:
                run_id = str(uuid.uuid4())
                for event_type in ("START", "COMPLETE"):
                    response = client.post("/api/v1/lineage", headers=headers,
                                           content=json.dumps(run_event(run_id, event_type, i)))
                    response.raise_for_status()
                    sent[k] += 1
                i += conns
                continue
            response = client.post(path, content=json.dumps(events), headers=headers)
            response.raise_for_status()
            sent[k] += n

    async def post(reader, writer, host, path, body):
        writer.write(
            b"POST %s HTTP/1.1\\r\\nHost: %s\\r\\n"
            b"Content-Type: application/json\\r\\nContent-Length: %d\\r\\n\\r\\n%s"
            % (path, host.encode(), len(body), body)
        )
        head = await reader.readuntil(b"\\r\\n\\r\\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise SystemExit(head.decode(errors="replace"))
        length = int(head.lower().split(b"content-length:")[1].split(b"\\r\\n")[0])
        await reader.readexactly(length)

    async def raw_client(k):
        host, port = bases[k % len(bases)].split("//")[1].split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        i = k
        # native-raw: one body, encoded before the clock starts and sent again and again, as
        # the raw-insert reference inserts its rows, so the figure is the server's.
        body = json.dumps(native_events(k)).encode() if mode == "native-raw" else b""
        while running():
            if mode == "native-raw":
                await post(reader, writer, host, b"/api/v1/events", body)
                sent[k] += 500
                continue
            run_id = str(uuid.uuid4())
            for event_type in ("START", "COMPLETE"):
                body = json.dumps(run_event(run_id, event_type, i)).encode()
                await post(reader, writer, host, b"/api/v1/lineage", body)
                sent[k] += 1
            i += conns
        writer.close()

    if mode in ("ol-raw", "native-raw"):
        async def main():
            await asyncio.gather(*(raw_client(k) for k in range(conns)))
        asyncio.run(main())
    else:
        threads = [threading.Thread(target=httpx_client, args=(k,)) for k in range(conns)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    elapsed = time.perf_counter() - started
    print(json.dumps({"sent": sum(sent), "seconds": elapsed, "cpu": time.process_time() - cpu_started}))
    """
    )
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, timeout: float = 30) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the server did not answer at {url}")


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def writer_counters(base: str) -> tuple[float, float, float]:
    """The server's ingest writer so far, from /metrics: (transactions, requests, busy s)."""
    import httpx

    found = dict.fromkeys(
        (
            "lakelens_ingest_transactions_total",
            "lakelens_ingest_transaction_requests_total",
            "lakelens_ingest_writer_busy_seconds_total",
        ),
        0.0,
    )
    text = httpx.get(f"{base}/metrics", headers={"Accept-Encoding": "identity"}, timeout=60).text
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in found:
            found[name] = float(value)
    transactions, requests, busy = found.values()
    return transactions, requests, busy


def build_graph(url: str, nodes: int) -> str:
    """A layered DAG of `nodes` assets under one root, written straight into the store."""
    from lakelens.events import Batch
    from lakelens.model import LineageEdge
    from lakelens.store import Store

    store = Store(url)
    batch = Batch()
    layers, width = 10, nodes // 10
    names = [[f"graph_{layer}_{i}" for i in range(width)] for layer in range(layers)]
    for i in range(width):
        batch.add(LineageEdge("graph_root", names[0][i]))
    for layer in range(1, layers):
        for i in range(width):
            batch.add(LineageEdge(names[layer - 1][i], names[layer][i]))
            batch.add(LineageEdge(names[layer - 1][(i * 7 + 3) % width], names[layer][i]))
    store.write(batch)
    store.close()
    return "graph_root"


DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextmanager
def fresh_store(kind: str, home: str, postgres_url: str) -> Iterator[str]:
    """The URL of an empty store: a SQLite file in `home`, or a new PostgreSQL database
    (created on the server of `postgres_url`, dropped afterwards)."""
    if kind.startswith("sqlite"):
        yield f"sqlite:///{Path(home) / 'lakelens.db'}"
        return
    import sqlalchemy as sa

    name = f"lakelens_bench_{os.getpid()}_{time.monotonic_ns() % 10**9}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _log_columns() -> tuple[str, ...]:
    from lakelens.events import LOG_COLUMNS

    return tuple(LOG_COLUMNS)


def _log_rows() -> list[tuple[object, ...]]:
    """The rows one native request of the bench stores (500 log records)."""
    scope: dict[str, object] = {}
    exec(LOG_RECORD, scope)  # the client's own record maker, defined above
    log_record = scope["log_record"]
    now = time.time()
    rows = []
    for j in range(500):
        message, attributes = log_record(j, _REALISTIC)  # type: ignore[operator]
        rows.append(
            (now, 20, message, "bench", "bench-run", f"asset_{j % 50}", None, None, None,
             json.dumps(attributes))
        )  # fmt: skip
    return rows


def raw_insert_rows_per_s(url: str, seconds: float, synchronous: str = "NORMAL") -> float:
    """The store's physical limit for the native phase's rows: sqlite3 executemany or
    PostgreSQL COPY into lakelens' own logs table (same indexes), a transaction per 500;
    SQLite at the store's `synchronous` setting."""
    from lakelens.store import Store

    store = Store(url)
    store.engine  # noqa: B018  (creates the schema, by lakelens' migrations)
    store.close()
    rows, written = _log_rows(), 0
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        columns = _log_columns()
        sql = f"INSERT INTO logs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            conn.executemany(sql, rows)
            conn.commit()
            written += len(rows)
    else:
        import psycopg
        import sqlalchemy as sa

        plain = sa.make_url(url).set(drivername="postgresql")
        conn = psycopg.connect(plain.render_as_string(hide_password=False))
        copy = f"COPY logs ({', '.join(_log_columns())}) FROM STDIN"
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            with conn.cursor() as cursor, cursor.copy(copy) as out:
                for row in rows:
                    out.write_row(row)
            conn.commit()
            written += len(rows)
    elapsed = time.perf_counter() - started
    conn.close()
    return written / elapsed


# What HTTP alone allows: an ASGI app that reads the body and answers {}, under the uvicorn
# stack `lakelens serve` uses (cli/serve.py uvicorn_options: its protocol and limits).
BARE = textwrap.dedent(
    """
    import sys, uvicorn
    try:
        from lakelens.cli.serve import uvicorn_options
    except ImportError:  # a tree from before uvicorn_options (measured against)
        from lakelens.server.limits import header_timeout_protocol
        def uvicorn_options(seconds):
            return {"http": header_timeout_protocol(seconds), "server_header": False,
                    "timeout_keep_alive": 5}

    async def app(scope, receive, send):
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"{}"})

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), lifespan="off", log_config=None,
                access_log=False, **uvicorn_options(10.0))
    """
)


def bare_asgi_requests_per_s(seconds: float, conns: int) -> float:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-c", BARE, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(f"{base}/livez")
        return _drive(base, "ol-raw", seconds, conns)["sent"] / seconds
    finally:
        server.terminate()
        server.wait(timeout=30)


def _drive(base: str, mode: str, seconds: float, conns: int) -> dict[str, float]:
    """Run the client for `seconds`: {"sent", "seconds", "cpu" (the client's CPU seconds)}.
    `base` may list several servers, comma-separated: connection k goes to the k-th."""
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            CLIENT,
            base,
            mode,
            str(seconds),
            str(conns),
            "realistic" if _REALISTIC else "short",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 120,
    ).stdout
    data: dict[str, float] = json.loads(out)
    return data


def time_impact(base: str, asset: str, repeats: int) -> tuple[float, list[float]]:
    """(ms of the first request after the graph changed, ms of each later one)."""
    import httpx

    def timed(client: httpx.Client) -> float:
        started = time.perf_counter()
        client.get(f"/api/v1/lineage/{asset}/impact").raise_for_status()
        return (time.perf_counter() - started) * 1000

    with httpx.Client(base_url=base, timeout=60) as client:
        first = timed(client)
        return first, [timed(client) for _ in range(repeats)]


def server_env(home: str, url: str, kind: str = "") -> dict[str, str]:
    env = dict(
        os.environ, LAKELENS_HOME=home, LAKELENS_LOG_FORMAT="none", LAKELENS_DATABASE_URL=url
    )
    if kind == "sqlite-full":
        env["LAKELENS_SQLITE_SYNCHRONOUS"] = "FULL"
    return env


@contextmanager
def serving(home: str, url: str, kind: str = "") -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`lakelens serve --no-alerts` on the store at `url`, ready: (process, base URL)."""
    port = free_port()
    server = subprocess.Popen(
        [LAKELENS, "serve", "--port", str(port), "--home", home, "--no-alerts"],
        env=server_env(home, url, kind),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(f"{base}/livez")
        yield server, base
    finally:
        server.terminate()
        server.wait(timeout=30)


def one_run(
    seconds: float, impact_repeats: int, phases: list[str], kind: str, postgres_url: str
) -> dict[str, float]:
    result: dict[str, float] = {}
    with (
        tempfile.TemporaryDirectory(prefix="lakelens-ingest-bench-") as home,
        fresh_store(kind, home, postgres_url) as url,
    ):
        root = build_graph(url, 10_000)
        with serving(home, url, kind) as (server, base):
            for key, mode, conns, _label in PHASES:
                if key.split("_events")[0] not in phases:
                    continue
                cpu = cpu_seconds(server.pid)
                writer = writer_counters(base)
                data = _drive(base, mode, seconds, conns)
                result[key] = data["sent"] / data["seconds"]
                # The group commit, as the server's /metrics counts it: requests per
                # transaction, and the share of the phase its one writer was busy.
                done = [b - a for a, b in zip(writer, writer_counters(base), strict=True)]
                result[f"{key}:requests_per_transaction"] = done[1] / max(1.0, done[0])
                result[f"{key}:writer_busy"] = done[2] / data["seconds"]
                per_request = 500 if mode.startswith("native") else 100 if mode == "ol-batch" else 1
                requests = data["sent"] / per_request
                result[f"{key}:server_cpu_ms_per_request"] = (
                    (cpu_seconds(server.pid) - cpu) * 1000 / max(1, requests)
                )
                # The client shares the machine's cores and, on one connection, the request's
                # time: its cost (building and encoding the bodies) bounds the rate too.
                result[f"{key}:client_cpu_ms_per_request"] = data["cpu"] * 1000 / max(1, requests)
            first, impact = time_impact(base, root, impact_repeats)
            result["impact_first_ms"] = first
            result["impact_ms"] = statistics.median(impact)
            result["rss_mb"] = peak_rss_mb(server.pid)
    # The references, measured in this run right after the figures they judge.
    if "native" in phases or "native_server_bound" in phases:
        with (
            tempfile.TemporaryDirectory(prefix="lakelens-raw-bench-") as home,
            fresh_store(kind, home, postgres_url) as url,
        ):
            result["raw_insert_rows_per_s"] = raw_insert_rows_per_s(
                url, seconds, "FULL" if kind == "sqlite-full" else "NORMAL"
            )
        for key in ("native", "native_server_bound"):
            if f"{key}_events_per_s" in result:
                result[f"{key}_ratio"] = (
                    result[f"{key}_events_per_s"] / result["raw_insert_rows_per_s"]
                )
    if "openlineage_8_conns" in phases:
        result["bare_asgi_requests_per_s"] = bare_asgi_requests_per_s(seconds, 8)
        result["openlineage_8_conns_ratio"] = (
            result["openlineage_8_conns_events_per_s"] / result["bare_asgi_requests_per_s"]
        )
    return result


def _goal(key: str) -> tuple[str, float] | None:
    if key in RATIO_KEYS:
        return ">=", GOALS[key]
    if key in ("rss_mb", "impact_ms"):
        return "<", GOALS[key]
    return None


def _store_kind(url: str) -> str:
    return "postgres" if url.startswith("postgresql") else "sqlite"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s per phase, 1 run")
    parser.add_argument("--runs", type=int, help="fresh servers to measure (median reported)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--phases",
        default=",".join(_PHASE_NAMES),
        help=f"comma-separated, of: {', '.join(_PHASE_NAMES)} (default: all)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LAKELENS_DATABASE_URL"),
        help="a PostgreSQL server URL: each run uses a new database on it (default: SQLite)",
    )
    parser.add_argument(
        "--stores",
        help="sqlite,postgres: measure both in turn and print PostgreSQL / SQLite "
        f"(PostgreSQL at --database-url, else {DEFAULT_POSTGRES}); sqlite-full is SQLite "
        "with synchronous=FULL (a flush at every commit, as PostgreSQL does), for information",
    )
    parser.add_argument(
        "--realistic",
        action="store_true",
        help="native logs with 60-character messages and 3 attributes (default: 12 and 1)",
    )
    args = parser.parse_args(argv)
    global _REALISTIC
    _REALISTIC = args.realistic
    phases = args.phases.split(",")
    unknown = set(phases) - set(_PHASE_NAMES)
    if unknown:
        parser.error(f"unknown phase(s): {', '.join(sorted(unknown))}")
    postgres_url = args.database_url if args.database_url else DEFAULT_POSTGRES
    if args.stores:
        kinds = args.stores.split(",")
        if not set(kinds) <= set(_STORE_LABELS):
            parser.error(f"--stores takes {', '.join(_STORE_LABELS)}, comma-separated")
    else:
        kinds = [_store_kind(args.database_url) if args.database_url else "sqlite"]
    seconds = 3.0 if args.quick else 15.0
    runs = args.runs or (1 if args.quick else 3)
    load = os.getloadavg()
    results: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
    for _ in range(runs):
        for kind in kinds:  # taking turns, so a noisy neighbour slows both
            results[kind].append(
                one_run(seconds, 5 if args.quick else 20, phases, kind, postgres_url)
            )
    median = {
        kind: {key: statistics.median(r[key] for r in found) for key in found[0]}
        for kind, found in results.items()
    }
    verdicts: dict[str, dict[str, bool]] = {kind: {} for kind in kinds}
    for kind, figures in median.items():
        for key, value in figures.items():
            goal = _goal(key)
            if goal is not None:
                verdicts[kind][key] = value >= goal[1] if goal[0] == ">=" else value < goal[1]
    versus = _versus(median, "sqlite")
    # Information: against SQLite flushing at every commit too (the goal is judged on the
    # store's default, synchronous=NORMAL, which does not flush at commit in WAL mode).
    versus_full = _versus(median, "sqlite-full")
    if args.json:
        print(
            json.dumps(
                {
                    "results": median,
                    "runs": results,
                    "postgres_vs_sqlite": versus,
                    "postgres_vs_sqlite_full": versus_full,
                    "goals": GOALS,
                    "pass": verdicts,
                    "load_average_before": load,
                    "load_average_after": os.getloadavg(),
                },
                indent=2,
            )
        )
        return 0
    for kind in kinds:
        _print_store(kind, median[kind], results[kind], verdicts[kind], seconds, runs, load)
    if versus:
        print("PostgreSQL / SQLite, same run (goal >= 0.7 for ingest):")
        for key, _mode, _conns, label in PHASES:
            if key in versus:
                ok = "PASS" if versus[key] >= GOALS["postgres_vs_sqlite"] else "FAIL"
                print(f"   {label:48} {versus[key]:10.2f}   {ok}")
    if versus_full:
        print("PostgreSQL / SQLite with synchronous=FULL (both flush at commit), information:")
        for key, _mode, _conns, label in PHASES:
            if key in versus_full:
                print(f"   {label:48} {versus_full[key]:10.2f}")
    return 0


def _versus(median: dict[str, dict[str, float]], sqlite: str) -> dict[str, float]:
    """PostgreSQL ÷ the SQLite kind `sqlite`, per phase, when both were measured."""
    if "postgres" not in median or sqlite not in median:
        return {}
    return {
        key: median["postgres"][key] / median[sqlite][key]
        for key, _mode, _conns, _label in PHASES
        if median[sqlite].get(key)
    }


_STORE_LABELS = {
    "sqlite": "SQLite",
    "sqlite-full": "SQLite, synchronous=FULL",
    "postgres": "PostgreSQL",
}


def _print_store(
    kind: str,
    median: dict[str, float],
    results: list[dict[str, float]],
    verdicts: dict[str, bool],
    seconds: float,
    runs: int,
    load: tuple[float, float, float],
) -> None:
    print(
        f"lakelens serve ingest, {_STORE_LABELS[kind]}, clients in "
        f"a second process ({seconds:g} s per phase, median of {runs} run{'s' * (runs > 1)}; "
        f"load average {load[0]:.2f} before, {os.getloadavg()[0]:.2f} after)"
    )
    print(
        f"   {'':48} {'result':>10} {'(min-max)':>19} {'server CPU/req':>15} {'client CPU/req':>15}"
    )
    rows = [(key, label) for key, _mode, _conns, label in PHASES if key in median] + [
        ("raw_insert_rows_per_s", "reference: raw bulk insert of the same rows/s"),
        ("native_ratio", "native ÷ raw (client encodes every body)"),
        ("native_server_bound_ratio", "native, body encoded once ÷ raw bulk insert"),
        ("bare_asgi_requests_per_s", "reference: bare ASGI endpoint, 8 conns, req/s"),
        ("openlineage_8_conns_ratio", "OpenLineage 8 conns ÷ bare ASGI"),
        ("rss_mb", "server peak RSS, MB"),
        ("impact_ms", "impact on a 10,000-node graph, ms (median)"),
        ("impact_first_ms", "  first impact request after lineage changed, ms"),
    ]
    writer = [
        f"{key.removesuffix('_events_per_s')}: "
        f"{median[f'{key}:requests_per_transaction']:.1f} requests a transaction, "
        f"busy {median[f'{key}:writer_busy']:.0%}"
        for key, _mode, _conns, _label in PHASES
        if f"{key}:writer_busy" in median
    ]
    for key, label in rows:
        if key not in median:
            continue
        values = [r[key] for r in results]
        ratio = key.endswith("_ratio")
        digits = ".2f" if ratio else ",.0f"
        spread = f"({min(values):{digits}}-{max(values):{digits}})" if runs > 1 else ""
        cpu = median.get(f"{key}:server_cpu_ms_per_request")
        cpu_text = f"{cpu:.2f} ms" if cpu is not None else ""
        client = median.get(f"{key}:client_cpu_ms_per_request")
        client_text = f"{client:.2f} ms" if client is not None else ""
        goal = _goal(key)
        verdict = ""
        if goal is not None:
            verdict = f"goal {goal[0]} {goal[1]:,}  {'PASS' if verdicts[key] else 'FAIL'}"
        value = f"{median[key]:10.2f}" if ratio else f"{median[key]:10,.1f}"
        print(f"   {label:48} {value} {spread:>19} {cpu_text:>15} {client_text:>15}   {verdict}")
    if writer:
        print("   the server's ingest writer (/metrics), median:")
        for line in writer:
            print(f"     {line}")


if __name__ == "__main__":
    raise SystemExit(main())
