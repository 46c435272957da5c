"""Monitors: warehouse tables watched from their metadata (row counts, sizes, modification
times, columns), recorded as ordinary events so freshness, volume and drift alerts work for
tables no pipeline reports.

    from lakelens.monitors import MonitorConfig, run_cycle
    config = MonitorConfig.create("postgresql://monitor@db/analytics", schemas=["public"])
    result = run_cycle(store, config)

`lakelens monitor add|list|remove|run` and `lakelens serve` are built on these.
"""

from __future__ import annotations

from lakelens.monitors.base import Collector, CycleResult, Table, run_cycle
from lakelens.monitors.settings import MonitorConfig, MonitorError

__all__ = ["Collector", "CycleResult", "MonitorConfig", "MonitorError", "Table", "run_cycle"]
