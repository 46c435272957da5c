"""Ingest throughput of `lakelens serve`: native events/s, OpenLineage events/s, server RSS,
and impact analysis latency on a 10,000-node lineage graph.

The server runs on 127.0.0.1 with a fresh SQLite store; the clients run in a second process
(httpx, keep-alive), so both cores are shared as they would be on a small machine.

    .venv/bin/python bench/ingest.py            # about a minute
    .venv/bin/python bench/ingest.py --quick
    .venv/bin/python bench/ingest.py --json
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
from pathlib import Path
from typing import Any

LAKELENS = str(Path(sys.executable).with_name("lakelens"))
GOALS = {
    "native_events_per_s": 50_000,
    "openlineage_events_per_s": 2_000,
    "rss_mb": 200,
    "impact_ms": 50,
}

CLIENT = textwrap.dedent(
    """
    import json, sys, time, uuid
    import httpx
    base, mode, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    client = httpx.Client(base_url=base, timeout=60)
    sent = 0
    started = time.perf_counter()
    if mode == "native":
        n = 0
        while time.perf_counter() - started < seconds:
            now = time.time()
            events = [
                {"type": "log", "time": now, "level": 20, "message": "fetched rows", "logger": "bench",
                 "run_id": "bench-run", "asset": f"asset_{i % 50}", "attributes": {"rows": i}}
                for i in range(500)
            ]
            response = client.post("/api/v1/events", content=json.dumps(events),
                                   headers={"Content-Type": "application/json"})
            response.raise_for_status()
            sent += 500
    else:
        i = 0
        while time.perf_counter() - started < seconds:
            run_id = str(uuid.uuid4())
            for event_type in ("START", "COMPLETE"):
                event = {
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
                response = client.post("/api/v1/lineage", content=json.dumps(event),
                                       headers={"Content-Type": "application/json"})
                response.raise_for_status()
                sent += 1
            i += 1
    elapsed = time.perf_counter() - started
    print(json.dumps({"sent": sent, "seconds": elapsed}))
    """
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


def build_graph(home: str, nodes: int) -> str:
    """A layered DAG of `nodes` assets under one root, written straight into the store."""
    from lakelens.events import Batch
    from lakelens.model import LineageEdge
    from lakelens.store import Store

    store = Store(f"sqlite:///{Path(home) / 'lakelens.db'}")
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


def time_impact(base: str, asset: str, repeats: int) -> list[float]:
    import httpx

    with httpx.Client(base_url=base, timeout=60) as client:
        client.get(f"/api/v1/lineage/{asset}/impact").raise_for_status()  # warm the cache
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            client.get(f"/api/v1/lineage/{asset}/impact").raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s per phase instead of 15 s")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    seconds = 3.0 if args.quick else 15.0
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="lakelens-ingest-bench-") as home:
        root = build_graph(home, 10_000)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = dict(os.environ, LAKELENS_HOME=home, LAKELENS_LOG_FORMAT="none")
        server = subprocess.Popen(
            [LAKELENS, "serve", "--port", str(port), "--home", home, "--no-alerts"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_ready(f"{base}/livez")
            for mode in ("native", "openlineage"):
                out = subprocess.run(
                    [sys.executable, "-c", CLIENT, base, mode, str(seconds)],
                    capture_output=True,
                    text=True,
                    check=True,
                    timeout=seconds + 120,
                ).stdout
                data = json.loads(out)
                result[f"{mode}_events_per_s"] = data["sent"] / data["seconds"]
            impact = time_impact(base, root, 5 if args.quick else 20)
            result["impact_ms"] = statistics.median(impact)
            result["rss_mb"] = peak_rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
    verdicts = {
        "native_events_per_s": result["native_events_per_s"] >= GOALS["native_events_per_s"],
        "openlineage_events_per_s": result["openlineage_events_per_s"]
        >= GOALS["openlineage_events_per_s"],
        "rss_mb": result["rss_mb"] < GOALS["rss_mb"],
        "impact_ms": result["impact_ms"] < GOALS["impact_ms"],
    }
    if args.json:
        print(json.dumps({"results": result, "goals": GOALS, "pass": verdicts}, indent=2))
    else:
        print(
            f"lakelens serve ingest, SQLite, client in a second process ({seconds:g} s per phase)"
        )
        rows = [
            (
                "native events/s (batches of 500 logs)",
                result["native_events_per_s"],
                ">=",
                GOALS["native_events_per_s"],
            ),
            (
                "OpenLineage RunEvents/s (one per request)",
                result["openlineage_events_per_s"],
                ">=",
                GOALS["openlineage_events_per_s"],
            ),
            ("server peak RSS, MB", result["rss_mb"], "<", GOALS["rss_mb"]),
            (
                "impact on a 10,000-node graph, ms (median)",
                result["impact_ms"],
                "<",
                GOALS["impact_ms"],
            ),
        ]
        for (label, value, op, goal), verdict in zip(rows, verdicts.values(), strict=True):
            print(
                f"   {label:45} {value:12,.1f}   goal {op} {goal:,}   {'PASS' if verdict else 'FAIL'}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
