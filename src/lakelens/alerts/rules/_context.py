"""What every rule reads: the finding it produces and the state it reads, now or as of a past moment."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from lakelens.alerts.config import AlertingConfig
from lakelens.analysis.lineage import LineageGraph, load_graph
from lakelens.store import schema

__all__ = ["Finding", "RuleContext"]


@dataclass
class Finding:
    """A condition that holds now and deserves an alert."""

    rule: str
    key: str
    severity: str
    title: str
    summary: str
    asset: str | None = None
    run_id: str | None = None
    occurrence: str | None = None
    partition: str | None = None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    parent: str | None = None
    # When the fault happened (a failed run's end, a check's time, when data became due).
    at: float | None = None

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(f"{self.rule}|{self.key}".encode()).hexdigest()[:32]


@dataclass
class _AssetState:
    """An asset's latest outcome as of a moment in the past (replay)."""

    name: str
    kind: str | None
    owner: str | None
    critical: bool | None
    tags: str | None
    freshness_seconds: float | None
    last_status: str | None = None
    last_run_id: str | None = None
    last_start_time: float | None = None
    last_success_time: float | None = None


class RuleContext:
    """The store's state as the rules (and incident grouping) read it: the current state, or
    with `as_of` the state at `now` rebuilt from history, as a live evaluator saw it then."""

    def __init__(
        self, conn: sa.Connection, config: AlertingConfig, now: float, *, as_of: bool = False
    ) -> None:
        self.conn = conn
        self.config = config
        self.now = now
        self.as_of = as_of
        self._graph: LineageGraph | None = None
        self._downstream: dict[str, list[str]] = {}
        self._feedback: dict[str, set[str]] | None = None
        self.assets: dict[str, Any] = {
            row.name: row
            for row in conn.execute(
                sa.select(
                    schema.assets.c.name,
                    schema.assets.c.kind,
                    schema.assets.c.owner,
                    schema.assets.c.critical,
                    schema.assets.c.tags,
                    schema.assets.c.freshness_seconds,
                    schema.assets.c.last_status,
                    schema.assets.c.last_run_id,
                    schema.assets.c.last_start_time,
                    schema.assets.c.last_success_time,
                )
            )
        }
        if as_of:
            self.assets = self._history_state()

    @property
    def feedback(self) -> dict[str, set[str]]:
        """Runs taken out of each asset's baselines by feedback (`incidents feedback`)."""
        if self._feedback is None:
            f = schema.baseline_feedback
            found: dict[str, set[str]] = {}
            for asset, run_id in self.conn.execute(
                sa.select(f.c.asset, f.c.run_id).where(f.c.run_id.is_not(None), self.upto(f.c.time))
            ):
                found.setdefault(asset, set()).add(run_id)
            self._feedback = found
        return self._feedback

    def upto(self, column: Any) -> Any:
        """`column <= now` when replaying (later rows are the future), else no condition."""
        return column <= self.now if self.as_of else sa.true()

    def _history_state(self) -> dict[str, Any]:
        m = schema.materializations
        states = {
            name: _AssetState(
                name=name,
                kind=row.kind,
                owner=row.owner,
                critical=row.critical,
                tags=row.tags,
                freshness_seconds=row.freshness_seconds,
            )
            for name, row in self.assets.items()
        }
        latest = (
            sa.select(m.c.asset, sa.func.max(m.c.start_time).label("start"))
            .where(m.c.start_time <= self.now)
            .group_by(m.c.asset)
            .subquery()
        )
        for row in self.conn.execute(
            sa.select(m.c.asset, m.c.status, m.c.run_id, m.c.start_time, m.c.end_time).join(
                latest, sa.and_(latest.c.asset == m.c.asset, latest.c.start == m.c.start_time)
            )
        ):
            state = states.get(row.asset)
            if state is None:
                continue
            done = row.end_time is not None and row.end_time <= self.now
            state.last_status = row.status if done else "started"
            state.last_run_id = row.run_id
            state.last_start_time = row.start_time
        for asset, last in self.conn.execute(
            sa.select(m.c.asset, sa.func.max(m.c.end_time))
            .where(m.c.status == "success", m.c.end_time <= self.now)
            .group_by(m.c.asset)
        ):
            if asset in states:
                states[asset].last_success_time = last
        return dict(states)

    @property
    def graph(self) -> LineageGraph:
        if self._graph is None:
            self._graph = load_graph(self.conn)
        return self._graph

    def downstream(self, asset: str) -> list[str]:
        cached = self._downstream.get(asset)
        if cached is not None:
            return cached
        seen: list[str] = []
        stack = list(self.graph.downstream.get(asset, []))
        while stack:
            name = stack.pop()
            if name not in seen and name != asset:
                seen.append(name)
                stack.extend(self.graph.downstream.get(name, []))
        self._downstream[asset] = sorted(seen)
        return self._downstream[asset]

    def owner(self, asset: str) -> str | None:
        row = self.assets.get(asset)
        return row.owner if row is not None else None

    def tags(self, asset: str) -> dict[str, str]:
        row = self.assets.get(asset)
        return json.loads(row.tags) if row is not None and row.tags else {}

    def kind(self, asset: str) -> str | None:
        node = self.graph.nodes.get(asset)
        if node is not None:
            return node.kind
        row = self.assets.get(asset)
        return row.kind if row is not None else None

    def feeds_dashboard(self, asset: str) -> bool:
        return any(
            self.graph.nodes[n].kind == "dashboard"
            for n in self.downstream(asset)
            if n in self.graph.nodes
        )
