"""Alert quality: what people would be told over five weeks of history with known faults.

A scenario corpus is recorded with the public SDK and a FakeClock: four pipelines with daily
and weekly seasonality (an hourly shop quieter at weekends, a nightly batch, a weekday-only
export, an event pipeline every 30 minutes feeding five marts), four normal weeks, then a
fifth week with injected faults (below). lakelens is measured through `alerts replay` (the
live evaluator's decisions over history). Two peers run over the same corpus inside this
script: a fixed-threshold rule set and Elementary's z-score (|z| > 3 over 14 days).

    .venv/bin/python bench/alert_quality.py            # about a minute
    .venv/bin/python bench/alert_quality.py --json

Goals (issue 12): per injected incident 1 opened + 1 resolved message; 0 false messages over
the four normal weeks; every fault detected; a silent asset detected within 1.5 × its
learned interval after it was due.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

MONDAY = 1_799_625_600.0  # 2027-01-11 00:00 UTC
HOUR = 3600.0
DAY = 24 * HOUR
WEEK = 7 * DAY
NORMAL_WEEKS = 4
STEP = 900.0  # the replay's (and the peers') evaluation step


@dataclass(frozen=True)
class Fault:
    name: str
    asset: str  # the root asset an incident about it names
    start: float
    end: float  # when the data is healthy again
    kind: str


FAULT_DAY = MONDAY + NORMAL_WEEKS * WEEK
# OpenLineage names a dataset namespace/name; the SDK records the ledger under that name too.
RAW_LEDGER = "warehouse/raw_ledger"
FAULTS = (
    Fault("failure", "fct_revenue", FAULT_DAY + 10 * HOUR, FAULT_DAY + 11 * HOUR, "failure"),
    Fault("check (SDK)", "stg_orders", FAULT_DAY + 16 * HOUR, FAULT_DAY + 17 * HOUR, "check"),
    Fault(
        "check (OpenLineage)",
        RAW_LEDGER,
        FAULT_DAY + DAY + 3 * HOUR,
        FAULT_DAY + 2 * DAY + 3 * HOUR,
        "check",
    ),
    Fault(
        "silent asset",
        "weekday_export",
        FAULT_DAY + 2 * DAY + 6 * HOUR,
        FAULT_DAY + 3 * DAY + 6 * HOUR,
        "silent",
    ),
    Fault(
        "rows −60 %",
        "fct_ledger",
        FAULT_DAY + 3 * DAY + 2 * HOUR,
        FAULT_DAY + 4 * DAY + 2 * HOUR,
        "volume",
    ),
    Fault(
        "duration ×4",
        "stg_events",
        FAULT_DAY + 3 * DAY + 12 * HOUR,
        FAULT_DAY + 3 * DAY + 12.5 * HOUR,
        "duration",
    ),
    Fault(
        "schema drift", "fct_revenue", FAULT_DAY + 4 * DAY + 10 * HOUR, FAULT_DAY + 9 * DAY, "drift"
    ),
    Fault(
        "upstream outage, 5 marts",
        "raw_events",
        FAULT_DAY + 4 * DAY + 20 * HOUR,
        FAULT_DAY + 4 * DAY + 23 * HOUR,
        "outage",
    ),
)
END = FAULT_DAY + 6 * DAY


def _active(kind: str, t: float) -> Fault | None:
    for fault in FAULTS:
        if fault.kind == kind and fault.start <= t < fault.end:
            return fault
    return None


class Corpus:
    """Records the scenario through the SDK (what a user's pipelines would do)."""

    def __init__(self, clock: Any, seed: int = 12) -> None:
        self.clock = clock
        self.rng = random.Random(seed)

    def at(self, t: float) -> None:
        """Jobs overlap in real life; here they run one after the other, never back in time."""
        self.clock.set(max(self.clock(), t))

    def asset(self, name: str, rows: float, seconds: float, **options: Any) -> None:
        import lakelens

        with lakelens.asset(name, **options):
            self.clock.advance(seconds * self.rng.uniform(0.9, 1.1))
            lakelens.record(rows=int(rows * self.rng.uniform(0.95, 1.05)))

    def shop(self, t: float) -> None:
        import lakelens

        weekend = ((t - MONDAY) // DAY) % 7 >= 5
        scale = 0.3 if weekend else 1.0
        self.at(t + 60)
        try:
            with lakelens.run("shop"):
                self.asset("raw_orders", 1000 * scale, 20)
                with lakelens.asset("stg_orders", deps=["raw_orders"]):
                    self.clock.advance(15)
                    lakelens.record(rows=int(990 * scale))
                    lakelens.check(
                        "not_null(order_id)",
                        passed=_active("check", t) is None
                        or _active("check", t).asset != "stg_orders",
                        severity="error",  # type: ignore[union-attr]
                    )
                with lakelens.asset("fct_revenue", deps=["stg_orders"]):
                    self.clock.advance(30)
                    failure = _active("failure", t)
                    if failure is not None and failure.start <= t < failure.start + HOUR:
                        raise RuntimeError("division by zero in revenue")
                    lakelens.record(rows=int(48 * scale) + 2)
                    columns = {"day": "date", "revenue": "decimal"}
                    if _active("drift", t):
                        columns["currency"] = "text"
                    lakelens.schema(columns)
        except RuntimeError:
            pass

    def ledger(self, t: float) -> None:
        import lakelens

        self.at(t + 120)
        volume = _active("volume", t)
        with lakelens.run("nightly_ledger"):
            self.asset(RAW_LEDGER, 50_000, 300)
            self.asset("fct_ledger", 20_000 * (0.4 if volume else 1.0), 600, deps=[RAW_LEDGER])

    def ledger_test(self, t: float) -> None:
        """An OpenLineage data-quality job testing raw_ledger (its input), an hour later."""
        from lakelens.ingest.openlineage import to_ingested

        fault = _active("check", t + 3 * HOUR)
        failed = fault is not None and fault.asset == RAW_LEDGER
        when = datetime.fromtimestamp(t + 3 * HOUR, timezone.utc).isoformat()
        event = {
            "eventType": "COMPLETE",
            "eventTime": when,
            "run": {"runId": str(uuid.UUID(int=self.rng.getrandbits(128)))},
            "job": {"namespace": "quality", "name": "ge.raw_ledger"},
            "producer": "https://example.com/bench",
            "inputs": [
                {
                    "namespace": "warehouse",
                    "name": "raw_ledger",
                    "inputFacets": {
                        "dataQualityAssertions": {
                            "_producer": "https://example.com/bench",
                            "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/DataQualityAssertionsDatasetFacet.json",
                            "assertions": [
                                {
                                    "assertion": "unique",
                                    "success": not failed,
                                    "column": "entry_id",
                                    "severity": "error",
                                }
                            ],
                        }
                    },
                }
            ],
            "outputs": [],
        }
        return to_ingested(event, now=t + 3 * HOUR).batch  # type: ignore[return-value]

    def export(self, t: float) -> None:
        import lakelens

        if _active("silent", t):
            return
        self.at(t + 120)
        with lakelens.run("weekday_export"):
            self.asset("weekday_export", 7000, 40)

    def events(self, t: float) -> None:
        import lakelens

        self.at(t + 30)
        outage = _active("outage", t)
        slow = _active("duration", t)
        try:
            with lakelens.run("events"):
                with lakelens.asset("raw_events"):
                    self.clock.advance(10)
                    if outage:
                        raise ConnectionError("event API unreachable")
                    lakelens.record(rows=int(500 * self.rng.uniform(0.9, 1.1)))
                self.asset("stg_events", 480, 60 * (4 if slow else 1), deps=["raw_events"])
                for i in range(5):
                    self.asset(f"mart_{i}", 100, 5, deps=["stg_events"])
        except ConnectionError:
            pass


def record(home: Path) -> tuple[Any, Any]:
    import lakelens
    from lakelens.store import Store
    from lakelens.testing import FakeClock, recording

    clock = FakeClock(MONDAY)
    corpus = Corpus(clock)
    began = time.perf_counter()
    with recording(home, clock=clock, id_seed=12) as store:
        t = MONDAY
        while t < END:
            corpus.events(t)
            if (t - MONDAY) % HOUR == 0:
                corpus.shop(t)
                day = ((t - MONDAY) // DAY) % 7
                hour = ((t - MONDAY) % DAY) // HOUR
                if hour == 2:
                    corpus.ledger(t)
                    lakelens.flush()
                    store.write(corpus.ledger_test(t))
                if hour == 6 and day < 5:
                    corpus.export(t)
            t += 1800
        lakelens.flush()
    print(
        f"Recorded {(END - MONDAY) / DAY:.0f} days in {time.perf_counter() - began:.1f} s",
        file=sys.stderr,
    )
    return Store(settings=store.settings), clock


# -- scoring -------------------------------------------------------------------------------


@dataclass
class Score:
    name: str
    false_normal: int = 0  # messages during the normal weeks
    per_fault: dict[str, int] = field(default_factory=dict)  # messages attributed to each fault
    detected: dict[str, float | None] = field(default_factory=dict)  # first message time
    unmatched_fault_week: int = 0  # messages in the fault week matching no fault
    reminders: int = 0  # "still open" messages, counted apart (the goal sets them aside)

    def row(self) -> dict[str, Any]:
        counts = [self.per_fault.get(f.name, 0) for f in FAULTS]
        return {
            "name": self.name,
            "false_messages_normal_weeks": self.false_normal,
            "faults_detected": sum(1 for f in FAULTS if self.detected.get(f.name) is not None),
            "faults": len(FAULTS),
            "messages_per_fault_mean": statistics.mean(counts),
            "messages_per_fault": dict(zip([f.name for f in FAULTS], counts, strict=True)),
            "false_messages_fault_week": self.unmatched_fault_week,
            "reminders": self.reminders,
        }


def _attribute(
    score: Score, when: float, assets: set[str], downstream: dict[str, set[str]]
) -> None:
    if when < FAULT_DAY:
        score.false_normal += 1
        return
    for fault in FAULTS:
        related = {fault.asset} | downstream.get(fault.asset, set())
        if assets & related and fault.start <= when <= fault.end + 6 * HOUR:
            score.per_fault[fault.name] = score.per_fault.get(fault.name, 0) + 1
            if score.detected.get(fault.name) is None:
                score.detected[fault.name] = when
            return
    score.unmatched_fault_week += 1


def lakelens_score(store: Any, downstream: dict[str, set[str]]) -> tuple[Score, float]:
    from lakelens.alerts.config import AlertingConfig, RuleSettings
    from lakelens.alerts.incidents import Policy
    from lakelens.alerts.replay import replay

    config = AlertingConfig(rules=RuleSettings(), incident_policy=Policy(group_wait=0))
    began = time.perf_counter()
    result = replay(store, config, since=MONDAY, until=END, step=STEP)
    took = time.perf_counter() - began
    score = Score("lakelens")
    for n in result.notifications:
        if n.action == "reminder":
            score.reminders += 1
            continue
        _attribute(score, n.time, set(n.assets) | {n.root_asset or ""}, downstream)
    return score, took


def _materializations(store: Any) -> list[Any]:
    import sqlalchemy as sa

    from lakelens.store import schema

    m = schema.materializations
    with store.connect() as conn:
        return list(
            conn.execute(
                sa.select(
                    m.c.asset, m.c.status, m.c.start_time, m.c.end_time, m.c.rows, m.c.duration
                ).order_by(m.c.start_time)
            )
        )


def _checks(store: Any) -> list[Any]:
    import sqlalchemy as sa

    from lakelens.store import schema

    c = schema.check_results
    with store.connect() as conn:
        return list(conn.execute(sa.select(c.c.asset, c.c.passed, c.c.time).order_by(c.c.time)))


def _schema_changes(store: Any) -> list[tuple[str, float]]:
    import sqlalchemy as sa

    from lakelens.store import schema

    s = schema.schema_snapshots
    out = []
    previous: dict[str, str] = {}
    with store.connect() as conn:
        for asset, t, digest in conn.execute(
            sa.select(s.c.asset, s.c.time, s.c.hash).order_by(s.c.time)
        ):
            if asset in previous and previous[asset] != digest:
                out.append((asset, t))
            previous[asset] = digest
    return out


def peer_scores(store: Any, downstream: dict[str, set[str]]) -> list[Score]:
    """Two peers over the same events: one message per firing condition, as they send."""
    mats = _materializations(store)
    checks = _checks(store)
    drifts = _schema_changes(store)
    fixed = Score("fixed thresholds")
    zscore = Score("z-score |z| > 3, 14 days")
    history: dict[str, list[Any]] = defaultdict(list)
    for row in mats:
        past = [h for h in history[row.asset] if h.start_time >= row.start_time - 14 * DAY]
        done = row.end_time or row.start_time
        if row.status == "failure":
            for score in (fixed, zscore):
                _attribute(score, done, {row.asset}, downstream)
        elif row.status == "success" and len(past) >= 10:
            rows = [h.rows for h in past if h.rows is not None]
            durations = [h.duration for h in past if h.duration is not None]
            mean_rows = statistics.mean(rows)
            if row.rows is not None and abs(row.rows - mean_rows) > 0.3 * mean_rows:
                _attribute(fixed, done, {row.asset}, downstream)
            if row.duration is not None and row.duration > 2 * statistics.mean(durations):
                _attribute(fixed, done, {row.asset}, downstream)
            for values, value in ((rows, row.rows), (durations, row.duration)):
                sd = statistics.pstdev(values)
                if value is not None and sd > 0 and abs(value - statistics.mean(values)) / sd > 3:
                    _attribute(zscore, done, {row.asset}, downstream)
        if row.status == "success":
            history[row.asset].append(row)
    for check in checks:
        if not check.passed:
            for score in (fixed, zscore):
                _attribute(score, check.time, {check.asset}, downstream)
    for asset, t in drifts:
        for score in (fixed, zscore):
            _attribute(score, t, {asset}, downstream)
    # Freshness, evaluated every step: a message when an asset turns stale (once per spell).
    successes: dict[str, list[float]] = defaultdict(list)
    for row in mats:
        if row.status == "success" and row.end_time:
            successes[row.asset].append(row.end_time)
    for asset, times in successes.items():
        stale_fixed = stale_z = False
        index = 0
        t = MONDAY
        while t <= END:
            while index < len(times) and times[index] <= t:
                index += 1
            if index == 0:
                t += STEP
                continue
            last = times[index - 1]
            age = t - last
            now_fixed = age > 2 * HOUR
            if now_fixed and not stale_fixed:
                _attribute(fixed, t, {asset}, downstream)
            stale_fixed = now_fixed
            window = [b - a for a, b in itertools.pairwise(times[:index]) if a >= t - 14 * DAY]
            now_z = False
            if len(window) >= 10:
                sd = statistics.pstdev(window)
                now_z = sd > 0 and (age - statistics.mean(window)) / sd > 3
            if now_z and not stale_z:
                _attribute(zscore, t, {asset}, downstream)
            stale_z = now_z
            t += STEP
    return [fixed, zscore]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    from lakelens.analysis.lineage import load_graph

    with tempfile.TemporaryDirectory() as tmp:
        store, _ = record(Path(tmp) / "home")
        with store.connect() as conn:
            graph = load_graph(conn)
        downstream: dict[str, set[str]] = {}
        for name in graph.nodes:
            seen: set[str] = set()
            stack = list(graph.downstream.get(name, []))
            while stack:
                node = stack.pop()
                if node not in seen:
                    seen.add(node)
                    stack.extend(graph.downstream.get(node, []))
            downstream[name] = seen
        ours, took = lakelens_score(store, downstream)
        peers = peer_scores(store, downstream)
        silent = next(f for f in FAULTS if f.kind == "silent")
        store.close()
    rows = [s.row() for s in (ours, *peers)]
    detected = ours.detected.get(silent.name)
    silent_delay = None if detected is None else (detected - silent.start) / DAY
    evaluations = int((END - MONDAY) // STEP) + 1
    if args.json:
        print(
            json.dumps(
                {
                    "results": rows,
                    "replay_seconds": took,
                    "evaluations": evaluations,
                    "silent_detected_after_intervals": silent_delay,
                },
                indent=2,
            )
        )
        return 0
    print(
        f"Alert quality over {NORMAL_WEEKS} normal weeks + 1 week with {len(FAULTS)} faults "
        f"(replay: {evaluations:,} evaluations every {STEP / 60:.0f} min in {took:.1f} s)\n"
    )
    print(
        f"{'':26} {'false (4 normal wk)':>19} {'detected':>9} {'msgs/fault':>10} "
        f"{'false (fault wk)':>16} {'reminders':>9}"
    )
    for row in rows:
        print(
            f"{row['name']:26} {row['false_messages_normal_weeks']:>19} "
            f"{row['faults_detected']:>6}/{row['faults']:<2} {row['messages_per_fault_mean']:>10.1f} "
            f"{row['false_messages_fault_week']:>16} {row['reminders']:>9}"
        )
    print(
        "\nfixed thresholds: every failure and failed check, rows ±30 % of the 14-day mean, "
        "duration > 2× the mean, no update for 2 h.\nz-score: Elementary's default, |z| > 3 "
        "over 14 days for rows, duration and update gaps, every failure and failed check.\n"
        "Peers send one message per condition as it starts (no reminders, no grouping)."
    )
    print("\nMessages per fault (lakelens):")
    for name, count in rows[0]["messages_per_fault"].items():
        print(f"  {name:28} {count}")
    if silent_delay is not None:
        print(
            f"\nSilent daily asset detected {silent_delay:.2f} × its interval after it was due "
            "(goal ≤ 1.5)."
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
