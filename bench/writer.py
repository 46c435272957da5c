"""The ingest writer's transaction, in process: one-event OpenLineage requests as the
server's group committer writes them, one per transaction (requests that arrive one at a time)
or `--group N` per transaction (N runs' STARTs in one, then their COMPLETEs in the next, as N
concurrent requests are grouped).

Each RunEvent (START, then COMPLETE, whose output has no start of its own, so the writer takes
its run's) is converted before the clock starts; the clock runs over
`store.writes.write_batches` alone, on one held connection, as the committer holds it. Wall
time and this process's CPU per transaction and per event, SQLite and PostgreSQL taking turns,
and PostgreSQL ÷ SQLite (transactions/s) from the same run. No HTTP, no event loop: what is
left is the store's part of a request.

    .venv/bin/python bench/writer.py                         # both stores, 3 turns each
    .venv/bin/python bench/writer.py --group 8               # as eight concurrent requests
    .venv/bin/python bench/writer.py --stores postgres --turns 5 --json

PostgreSQL: a new database per turn on --database-url (default: the local test server).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from typing import Any

from ingest import RUN_EVENT  # bench/ is the script's folder, first on sys.path

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


# The RunEvent bench/ingest.py sends (one input, one output with output statistics), made by
# the same code its client process runs.
_SCOPE: dict[str, Any] = {"time": time}
exec(RUN_EVENT, _SCOPE)
run_event = _SCOPE["run_event"]


def one_turn(kind: str, events: int, postgres_url: str, group: int = 1) -> dict[str, float]:
    """Write `events` runs after 100 warm-up runs, `group` runs' STARTs in one transaction and
    then their COMPLETEs in another (as the committer groups concurrent one-event requests):
    ms per transaction and per event."""
    import sqlalchemy as sa

    from lakelens.config import load_settings
    from lakelens.ingest import openlineage
    from lakelens.store import Store
    from lakelens.store.engine import answer_deadline
    from lakelens.store.writes import Part, write_batches

    home = tempfile.mkdtemp(prefix="lakelens-writer-")
    admin = None
    if kind == "sqlite":
        url = f"sqlite:///{home}/lakelens.db"
    else:
        name = f"lakelens_writer_{os.getpid()}_{time.monotonic_ns() % 10**9}"
        admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = sa.make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    try:
        store = Store(settings=load_settings(home=home, database_url=url, log_format="none"))
        engine = store.engine
        groups: list[list[Any]] = []
        warm = -(-100 // group) * 2  # the warm-up runs' transactions
        for first in range(0, events + warm * group // 2, group):
            runs = [(str(uuid.uuid4()), i) for i in range(first, first + group)]
            for event_type in ("START", "COMPLETE"):
                groups.append([])
                for run_id, i in runs:
                    body = json.dumps(run_event(run_id, event_type, i)).encode()
                    batch = openlineage.body_to_ingested(body, now=time.time()).batch
                    groups[-1].append(Part(batch, source="openlineage"))
        conn = engine.connect()
        try:
            for at, parts in enumerate(groups):
                if at == warm:
                    wall, cpu = time.perf_counter(), time.process_time()
                with answer_deadline(30):
                    write_batches(engine, parts, connection=conn)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        finally:
            conn.close()
            store.close()
            engine.dispose()
    finally:
        if admin is not None:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()
    done = len(groups) - warm
    return {
        "wall_ms": wall / done * 1e3,
        "cpu_ms": cpu / done * 1e3,
        "wall_ms_per_event": wall / (done * group) * 1e3,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--events", type=int, default=1000, help="runs per turn (2 txns each)")
    parser.add_argument("--turns", type=int, default=3, help="turns per store, alternating")
    parser.add_argument(
        "--group", type=int, default=1, help="one-event requests per transaction (default 1)"
    )
    parser.add_argument("--database-url", default=os.environ.get("LAKELENS_DATABASE_URL", POSTGRES))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.stores.split(",") if k.strip()]
    turns: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    for turn in range(args.turns):
        for kind in kinds:
            turns[kind].append(one_turn(kind, args.events, args.database_url, args.group))
            if not args.json:
                got = turns[kind][-1]
                print(
                    f"  turn {turn + 1} {kind:9} {got['wall_ms']:.3f} ms wall, "
                    f"{got['cpu_ms']:.3f} ms CPU per transaction",
                    file=sys.stderr,
                )
    result: dict[str, Any] = {
        kind: {key: statistics.median(t[key] for t in found) for key in found[0]}
        for kind, found in turns.items()
    }
    if "sqlite" in result and "postgres" in result:
        result["postgres_vs_sqlite_txn_per_s"] = (
            result["sqlite"]["wall_ms"] / result["postgres"]["wall_ms"]
        )
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"writer transactions of {args.group} one-event OpenLineage request"
        f"{'s' * (args.group > 1)} each, median of {args.turns} turns:"
    )
    for kind in kinds:
        print(
            f"  {kind:9} {result[kind]['wall_ms']:.3f} ms wall  "
            f"{result[kind]['cpu_ms']:.3f} ms CPU  ({1e3 / result[kind]['wall_ms']:,.0f}/s; "
            f"{result[kind]['wall_ms_per_event']:.3f} ms an event)"
        )
    if "postgres_vs_sqlite_txn_per_s" in result:
        print(
            f"  PostgreSQL ÷ SQLite, transactions/s: {result['postgres_vs_sqlite_txn_per_s']:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
