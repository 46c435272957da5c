"""The partition upkeep (and with it today's hourly --grep index) runs shortly after each clock
hour begins, whenever the process made its first write."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest

from lakelens.store import Store
from lakelens.store._store import seconds_to_upkeep


def _at(clock: str) -> float:
    return datetime.fromisoformat(f"2026-12-07T{clock}+00:00").timestamp()


@pytest.mark.parametrize(
    ("clock", "wait"),
    [
        ("16:59:30", 90.0),  # the next hour's upkeep moment, 17:01
        ("17:00:30", 30.0),  # this hour's moment is still ahead
        ("17:01:00", 3600.0),  # just ran: the next one is 18:01
        ("17:01:30", 3570.0),
        ("17:45:00", 960.0),
    ],
)
def test_the_next_upkeep_is_a_minute_into_a_clock_hour(clock: str, wait: float) -> None:
    assert seconds_to_upkeep(_at(clock)) == pytest.approx(wait)


def test_maintain_partitions_schedules_the_next_upkeep_by_the_clock(tmp_path: Path) -> None:
    store = Store(url=f"sqlite:///{tmp_path / 'lakelens.db'}")
    try:
        before = time.time()
        store.maintain_partitions(now=_at("16:59:30"))
        due = store._partitions_due - before
        assert 89.0 <= due <= 91.0 + (time.time() - before)
    finally:
        store.close()


def test_a_clock_set_back_makes_the_upkeep_due(tmp_path: Path) -> None:
    """The schedule is on the wall clock: one set back by hours must not hold the upkeep up
    for as long."""
    store = Store(url=f"sqlite:///{tmp_path / 'lakelens.db'}")
    clock = [_at("17:30:00")]
    store.upkeep_clock = lambda: clock[0]
    try:
        assert not store._upkeep_due()  # never scheduled (SQLite until a first upkeep)
        store.maintain_partitions()
        assert store._partitions_due == _at("18:01:00")
        clock[0] = _at("17:45:00")
        assert not store._upkeep_due()
        clock[0] = _at("15:00:00")
        assert store._upkeep_due()
    finally:
        store.close()
