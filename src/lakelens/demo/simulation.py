"""Stand-ins for the systems the demo pipeline talks to: they move a FakeClock instead of working.

Everything here is seeded and keyed on the run's index (never on the wall clock), so the
same seed replays the same day whenever it is recorded.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from lakelens.testing import FakeClock

__all__ = [
    "SLOT_SECONDS",
    "EntriesPage",
    "Lakehouse",
    "MergeResult",
    "NightscoutAPI",
    "NightscoutTimeout",
    "QueryStats",
    "Simulation",
    "ticks",
]

SLOT_SECONDS = 300  # the pipeline runs every 5 minutes
ONGOING_OUTAGE_RUNS = 3
ONGOING_OUTAGE_MIN_RUNS = 36

# Typical duration (ms) of each dbt model and of the publish step.
MODEL_MS = {
    "stg_glucose_entries": 45.0,
    "fct_glucose_readings": 320.0,
    "mrt_glucose_readings": 85.0,
    "fct_daily_glucose_metrics": 60.0,
    "mrt_glucose_hourly_patterns": 110.0,
}
PUBLISH_MS = 500.0
SLOW_PUBLISH_MS = 1240.0
# Bytes per stored row, by table, for plausible volumes.
ROW_BYTES = {
    "raw.glucose_entries": 412,
    "stg_glucose_entries": 236,
    "fct_glucose_readings": 318,
    "mrt_glucose_readings": 264,
    "fct_daily_glucose_metrics": 512,
    "mrt_glucose_hourly_patterns": 180,
    "marts.glucose_readings": 264,
}
MIB = 1024 * 1024
# Simulated time moves in whole multiples of 2^-20 s (about a microsecond): every clock reading
# is then exact in floating point, so relative times do not depend on when the day starts.
TICK = 2.0**-20


def ticks(seconds: float) -> float:
    """`seconds` rounded to the simulation's time step."""
    return round(seconds / TICK) * TICK


class NightscoutTimeout(TimeoutError):
    """The Nightscout API did not answer within the client's timeout."""


@dataclass(frozen=True)
class EntriesPage:
    """What one GET /api/v1/entries returned, summarised (the demo keeps no rows)."""

    rows: int
    latency_ms: float
    invalid_device: int
    duplicates: int
    out_of_range: int
    outliers: int
    mean_mgdl: float
    std_mgdl: float
    newest_age_seconds: float


@dataclass(frozen=True)
class QueryStats:
    """What the engine reports about one statement: rows written, bytes, CPU and peak memory."""

    rows: int
    bytes: int
    cpu_seconds: float
    peak_memory_bytes: int


@dataclass(frozen=True)
class MergeResult:
    """The outcome of an Iceberg MERGE."""

    inserts: int
    updates: int
    snapshot_id: int
    stats: QueryStats


class Simulation:
    """Simulated time and luck for one recording: which runs hit an API outage, a slow period, outliers."""

    def __init__(self, *, start: float, runs: int, seed: int) -> None:
        self.start = float(start)
        self.runs = runs
        self.clock = FakeClock(start)
        self.rng = random.Random(seed)
        self.outage_runs = self._incidents() | self._ongoing_outage()
        self.outlier_runs = self._incidents()
        # Publishing is slow for about two hours of the day.
        slow = max(1, runs // 12)
        first = self.rng.randrange(runs - slow + 1)
        self.slow_runs = range(first, first + slow)

    def _incidents(self) -> frozenset[int]:
        """The runs hit by an incident: 2-5 a day, at least one in two hours, none in less."""
        per_day = self.rng.randint(2, 5)
        count = min(max(1, round(per_day * self.runs / 288)), self.runs // 24)
        return frozenset(self.rng.sample(range(self.runs), count))

    @property
    def ongoing_outage(self) -> frozenset[int]:
        """The runs of the outage still going on when the recording ends."""
        return self._ongoing_outage()

    def _ongoing_outage(self) -> frozenset[int]:
        """The API is down for the last 15 minutes of a recording of 3 hours or more.

        So a fresh demo has a live incident to explain: `lakelens why mrt_glucose_readings`.
        """
        if self.runs < ONGOING_OUTAGE_MIN_RUNS:
            return frozenset()
        return frozenset(range(self.runs - ONGOING_OUTAGE_RUNS, self.runs))

    def slot_start(self, index: int) -> float:
        return self.start + index * SLOT_SECONDS

    @property
    def index(self) -> int:
        """The index of the run whose 5-minute slot the clock is in."""
        return int((self.clock() - self.start) // SLOT_SECONDS)

    def sleep(self, seconds: float) -> None:
        """time.sleep for simulated code."""
        self.clock.advance(ticks(seconds))

    def work(self, ms: float, spread: float = 0.12) -> float:
        """Let about `ms` milliseconds pass (log-normal jitter); return the seconds that passed."""
        seconds = ticks(ms / 1000 * self.rng.lognormvariate(0.0, spread))
        self.clock.advance(seconds)
        return seconds

    def start_run(self, index: int) -> float:
        """Move the clock to run `index`'s start: its slot plus the scheduler's delay."""
        slot = self.slot_start(index)
        self.clock.set(slot + ticks(self.rng.uniform(0.2, 1.5)))
        return slot

    def stats(self, rows: int, table: str, seconds: float, base_mib: float) -> QueryStats:
        """Engine statistics for a statement that wrote `rows` rows in `seconds`."""
        return QueryStats(
            rows=rows,
            bytes=int(rows * ROW_BYTES[table] * self.rng.uniform(0.95, 1.05)),
            cpu_seconds=round(seconds * self.rng.uniform(0.35, 0.8), 6),
            peak_memory_bytes=int((base_mib + rows / 40) * MIB * self.rng.uniform(0.9, 1.1)),
        )


class NightscoutAPI:
    """The Nightscout REST API: answers in about 40 ms, except during an outage.

    In an outage the first request hangs until the client's timeout, later ones are refused.
    """

    timeout = 30.0

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self._timed_out_in: int | None = None

    def get_entries(self) -> EntriesPage:
        sim, rng = self.sim, self.sim.rng
        index = sim.index
        if index in sim.outage_runs:
            if self._timed_out_in != index:
                self._timed_out_in = index
                sim.sleep(self.timeout)
                raise NightscoutTimeout(f"Connection timeout after {self.timeout:.0f}s")
            sim.work(3.0)
            raise ConnectionRefusedError("Connection refused to nightscout.api")
        latency = sim.work(40.0, 0.2)
        # Mean glucose follows the day: lowest overnight, a peak after meals.
        phase = 2 * math.pi * (index % 288) / 288
        return EntriesPage(
            rows=max(1, round(rng.gauss(487, 9))),
            latency_ms=round(latency * 1000, 3),
            invalid_device=rng.choices((0, 1, 2, 3), weights=(70, 15, 12, 3))[0],
            duplicates=0,
            out_of_range=0,
            outliers=rng.randint(3, 6)
            if index in sim.outlier_runs
            else rng.choices((0, 1, 2), (85, 12, 3))[0],
            mean_mgdl=round(148 + 22 * math.sin(phase) + rng.gauss(0, 3), 1),
            std_mgdl=round(rng.gauss(45, 2), 1),
            newest_age_seconds=round(rng.uniform(15, 290), 1),
        )

    def usage(self) -> QueryStats:
        """What the client itself used (CPU, memory) when a request brought nothing back."""
        return self.sim.stats(0, "raw.glucose_entries", 0.01, base_mib=70)


class Lakehouse:
    """Iceberg tables queried through Trino by dbt, plus the PostgreSQL marts Superset reads."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self._snapshot = 5_210_000_000_000_000

    def check_types(self, rows: int) -> None:
        self.sim.work(8.0)

    def check_constraints(self, rows: int) -> None:
        self.sim.work(4.0)

    def read_snapshot(self, table: str) -> int:
        self.sim.work(20.0)
        return self._snapshot

    def merge(self, table: str, page: EntriesPage) -> MergeResult:
        seconds = self.sim.work(40.0)
        updates = self.sim.rng.choices((0, 1, 2, 3), weights=(30, 35, 25, 10))[0]
        self._snapshot += 1
        stats = self.sim.stats(page.rows, table, seconds, base_mib=160)
        return MergeResult(page.rows, updates, self._snapshot, stats)

    def write_metadata(self, table: str, result: MergeResult) -> None:
        self.sim.work(20.0)

    def run_checks(self, table: str) -> None:
        self.sim.work(15.0)

    def run_model(self, name: str, rows: int) -> QueryStats:
        seconds = self.sim.work(MODEL_MS[name])
        return self.sim.stats(rows, name, seconds, base_mib=220)

    def publish(self, table: str, rows: int) -> QueryStats:
        slow = self.sim.index in self.sim.slow_runs
        seconds = self.sim.work(SLOW_PUBLISH_MS if slow else PUBLISH_MS, 0.08)
        return self.sim.stats(rows, table, seconds, base_mib=90)
