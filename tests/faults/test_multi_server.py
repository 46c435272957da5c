"""Three `lakelens serve` on one PostgreSQL store, clients spread across them.

Every acknowledged event is stored once (retries of a batch to another server included), every
alert is sent once (the evaluating server killed mid-way included), and each server's live log
tail and lineage graph show what the other servers ingested.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROUNDS = 4  # per client; a round sends one batch of each kind
CLIENTS = 6  # two per server


@dataclass
class Sent:
    """One batch: its idempotency key, what it should leave in the store, and every answer."""

    key: str
    kind: str
    items: list[str]
    answers: list[tuple[str, int, bool]] = field(default_factory=list)  # (server, status, dup)


def _batches(tag: str, client: int, round_: int) -> list[tuple[Sent, str, Any]]:
    """(batch, path, JSON body) of each kind for one round of one client."""
    now = time.time()
    name = f"{client}-{round_}"
    logs = [f"{tag} native {name}-{j}" for j in range(10)]
    run = f"{tag}-run-{name}"
    native = [
        {"type": "run", "run_id": run, "job": f"{tag}-job", "status": "success", "end_time": now},
        # Three assets shared by every client: their rows and rollups are written by all servers.
        {"type": "materialization", "run_id": run, "asset": f"{tag}.asset_{round_ % 3}"},
        *({"type": "log", "message": m, "run_id": run, "time": now} for m in logs),
    ]
    ol_run = f"00000000-0000-4000-8000-{secrets.token_hex(6)}"
    openlineage = [
        _run_event(ol_run, kind, f"{tag}_raw_{round_ % 3}", f"{tag}_stg_{round_ % 3}", now)
        for kind in ("START", "COMPLETE")
    ]
    otlp_logs = [f"{tag} otlp {name}-{j}" for j in range(5)]
    records = [{"body": {"stringValue": m}} for m in otlp_logs]
    spans = [secrets.token_hex(8) for _ in range(3)]
    trace, begin = secrets.token_hex(16), int(now * 1e9)
    otlp_spans = [
        {
            "traceId": trace,
            "spanId": span,
            "name": f"{tag} step",
            "startTimeUnixNano": str(begin),
            "endTimeUnixNano": str(begin + 1_000_000),
        }
        for span in spans
    ]
    return [
        (Sent(f"{tag}-n-{name}", "native", [*logs, run]), "/api/v1/events", native),
        (Sent(f"{tag}-ol-{name}", "openlineage", [ol_run]), "/api/v1/lineage", openlineage),
        (
            Sent(f"{tag}-lg-{name}", "otlp_logs", otlp_logs),
            "/v1/logs",
            {"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]},
        ),
        (
            Sent(f"{tag}-tr-{name}", "otlp_traces", spans),
            "/v1/traces",
            {"resourceSpans": [{"scopeSpans": [{"spans": otlp_spans}]}]},
        ),
    ]


def _run_event(
    run_id: str, kind: str, upstream: str, downstream: str, when: float, **facets: Any
) -> dict[str, Any]:
    return {
        "eventType": kind,
        "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when)) + "Z",
        "producer": "https://example.com/test",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id},
        "job": {"namespace": "test", "name": downstream},
        "inputs": [{"namespace": "wh", "name": upstream}],
        "outputs": [{"namespace": "wh", "name": downstream, "facets": facets}],
    }


class Clients:
    """Clients in threads, each sending to its own server. A third of the batches go to the
    next server at the same moment too, a third again to the next server once answered (a
    retry after a lost answer that lands on another process)."""

    def __init__(self, tag: str, urls: list[str]) -> None:
        self.tag = tag
        self.urls = urls
        self.sent: list[Sent] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()

    def run(self) -> None:
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(self._client, range(CLIENTS)))

    def _client(self, client: int) -> None:
        own, other = self.urls[client % 3], self.urls[(client + 1) % 3]
        with httpx.Client(timeout=30) as http, ThreadPoolExecutor(1) as twin:
            for round_ in range(ROUNDS):
                for number, (sent, path, body) in enumerate(_batches(self.tag, client, round_)):
                    with self._lock:
                        self.sent.append(sent)
                    request = (path, json.dumps(body), sent)
                    retry = (client + round_ + number) % 3
                    if retry == 0:  # the same batch to two servers at once
                        echo = twin.submit(self._post, http, other, *request)
                        self._post(http, own, *request)
                        echo.result()
                    else:
                        self._post(http, own, *request)
                        if retry == 1:
                            self._post(http, other, *request)

    def _post(self, http: httpx.Client, url: str, path: str, content: str, sent: Sent) -> None:
        headers = {"Content-Type": "application/json", "Idempotency-Key": sent.key}
        try:
            response = http.post(url + path, content=content, headers=headers)
        except httpx.HTTPError as exc:
            self.errors.append(f"{url}{path} {sent.key}: {type(exc).__name__}: {exc}")
            return
        answer = response.json() if response.status_code == 200 else {}
        with self._lock:
            sent.answers.append((url, response.status_code, bool(answer.get("duplicate"))))
        if response.status_code != 200:
            self.errors.append(f"{url}{path} {sent.key}: {response.status_code} {response.text}")

    def acknowledged(self, kind: str) -> list[Sent]:
        return [s for s in self.sent if s.kind == kind and any(a[1] == 200 for a in s.answers)]


class Tail:
    """`GET /api/v1/logs/stream` of one server, read in a thread: (log id, message) of each event."""

    def __init__(self, url: str) -> None:
        self.events: list[tuple[int, str]] = []
        self.problems: list[str] = []
        self._open = threading.Event()
        threading.Thread(target=self._read, args=(url,), daemon=True).start()
        assert self._open.wait(15), f"the log stream of {url} did not open: {self.problems}"

    def _read(self, url: str) -> None:
        try:
            with (
                httpx.Client(timeout=httpx.Timeout(10, read=60)) as http,
                http.stream("GET", url + "/api/v1/logs/stream") as response,
            ):
                self._open.set()  # the stream's start position is fixed before the answer
                event_id = None
                for line in response.iter_lines():
                    if line.startswith("id: "):
                        event_id = int(line[4:])
                    elif line.startswith("data: ") and event_id is not None:
                        self.events.append((event_id, json.loads(line[6:])["message"]))
                        event_id = None
                    elif line.startswith("event: error"):
                        self.problems.append(line)
        except Exception as exc:  # reported by wait_for
            self.problems.append(f"{type(exc).__name__}: {exc}")

    def wait_for(self, messages: set[str], timeout: float) -> set[str]:
        """The messages not seen after `timeout` seconds (empty once all arrived)."""
        deadline = time.monotonic() + timeout
        while True:
            missing = messages - {message for _id, message in self.events}
            if not missing or time.monotonic() > deadline:
                return missing
            time.sleep(0.1)


def _edges(url: str) -> dict[tuple[str, str], Any]:
    graph = httpx.get(url + "/api/v1/lineage", timeout=30).raise_for_status().json()
    return {(e["upstream"], e["downstream"]): e["columns"] for e in graph["edges"]}


def _fail(url: str, asset: str) -> None:
    """A failed run of `asset`, posted to the server at `url`."""
    run = f"{asset}-run"
    events = [
        {"type": "run", "run_id": run, "job": "job", "status": "failure", "end_time": time.time()},
        {
            "type": "materialization",
            "run_id": run,
            "asset": asset,
            "status": "failure",
            "end_time": time.time(),
        },
    ]
    httpx.post(url + "/api/v1/events", json=events, timeout=30).raise_for_status()


def test_three_servers_store_each_event_once_alert_once_and_share_tail_and_lineage(
    shared_store: Any, serve: Any, receiver: Any
) -> None:
    tag = f"t{secrets.token_hex(3)}"
    variables = shared_store.server_env(receiver.url_for("/hook"))
    with ThreadPoolExecutor(3) as pool:
        servers = list(pool.map(lambda _: serve(alerts=True, **variables), range(3)))
    urls = [server.url for server in servers]
    tail = Tail(urls[0])
    assert _edges(urls[0]) == {}  # server A's lineage graph is cached now

    clients = Clients(tag, urls)
    clients.run()
    assert not clients.errors, clients.errors[:5]

    # Every acknowledged batch is stored once, whichever servers it went to.
    for sent in clients.sent:
        fresh = [a for a in sent.answers if not a[2]]
        if sent.kind in ("native", "openlineage"):  # the others' answers do not tell
            assert len(fresh) == 1, (sent.key, sent.answers)
    claimed = Counter(
        row[0]
        for row in shared_store.rows(
            "SELECT batch_id FROM ingest_batches WHERE batch_id LIKE :tag", tag=f"{tag}-%"
        )
    )
    assert claimed == Counter(s.key for s in clients.sent)
    messages = [
        m
        for kind in ("native", "otlp_logs")
        for s in clients.acknowledged(kind)
        for m in s.items
        if m.startswith(f"{tag} ")
    ]
    stored = Counter(
        row[0]
        for row in shared_store.rows(
            "SELECT message FROM logs WHERE message LIKE :tag", tag=f"{tag} %"
        )
    )
    assert stored == Counter(messages)
    spans = [span for s in clients.acknowledged("otlp_traces") for span in s.items]
    stored = Counter(
        row[0]
        for row in shared_store.rows(
            "SELECT span_id FROM spans WHERE name = :name", name=f"{tag} step"
        )
    )
    assert stored == Counter(spans)
    runs = [s.items[-1] for s in clients.acknowledged("native")]
    runs += [s.items[0] for s in clients.acknowledged("openlineage")]
    materialized = shared_store.rows(
        "SELECT r.run_id, r.status, count(m.id) FROM runs r "
        "LEFT JOIN materializations m ON m.run_id = r.run_id "
        "WHERE r.run_id = ANY(:runs) GROUP BY r.run_id, r.status",
        runs=runs,
    )
    assert sorted(materialized) == sorted((run, "success", 1) for run in runs)

    # Server A's live tail shows what servers B and C committed, each record once.
    missing = tail.wait_for(set(messages), timeout=10)
    assert not missing and not tail.problems, (len(missing), sorted(missing)[:3], tail.problems)
    seen = Counter(message for _id, message in tail.events if message.startswith(f"{tag} "))
    assert seen == Counter(messages)

    # Server A's cached lineage graph shows an edge, and then its columns, ingested through B.
    assert (f"wh/{tag}_raw_0", f"wh/{tag}_stg_0") in _edges(urls[0])
    new = _run_event(secrets.token_hex(4), "COMPLETE", f"{tag}_new", f"{tag}_stg_0", time.time())
    httpx.post(urls[1] + "/api/v1/lineage", json=new, timeout=30).raise_for_status()
    assert _edges(urls[0]).get((f"wh/{tag}_new", f"wh/{tag}_stg_0"), "missing") is None
    mapping = {
        "_producer": "https://example.com/test",
        "_schemaURL": "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json",
        "fields": {
            "id": {"inputFields": [{"namespace": "wh", "name": f"{tag}_raw_1", "field": "key"}]}
        },
    }
    late = _run_event(  # an edge seen before, its columns told by an event an hour old
        secrets.token_hex(4),
        "COMPLETE",
        f"{tag}_raw_1",
        f"{tag}_stg_1",
        time.time() - 3600,
        columnLineage=mapping,
    )
    httpx.post(urls[2] + "/api/v1/lineage", json=late, timeout=30).raise_for_status()
    assert _edges(urls[0])[(f"wh/{tag}_raw_1", f"wh/{tag}_stg_1")], "server A kept old columns"

    # One alert per failure, also when the evaluating server dies after finding a failure and
    # before telling it (the incident's group wait).
    leader = shared_store.leader(servers)
    others = [server for server in servers if server is not leader]
    _fail(others[0].url, f"{tag}.broken_1")
    receiver.wait_for(1, timeout=15)
    _fail(others[1].url, f"{tag}.broken_2")
    deadline = time.monotonic() + 10
    while not shared_store.rows("SELECT 1 FROM alerts WHERE asset = :a", a=f"{tag}.broken_2"):
        assert time.monotonic() < deadline, "the evaluator did not find the second failure"
        time.sleep(0.05)
    assert len(receiver.requests) == 1
    leader.kill()  # SIGKILL
    receiver.wait_for(2, timeout=20)
    time.sleep(3)  # the survivors ran more cycles: still one notification each
    alerted = [request.json()["data"]["asset"] for request in receiver.requests]
    assert alerted == [f"{tag}.broken_1", f"{tag}.broken_2"]
