"""What changed between two runs: status, durations per asset and span, rows, checks, schema.

`diff_runs` reads two runs (ids or unique prefixes) with `load_run`; `compare` then works on
what was read, in plain Python. Every list comes in the order a reader should see it: checks
that started failing first, then the assets, spans and schemas that changed most.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakelens.analysis._db import Reader, borrow
from lakelens.analysis.runs import UnknownRunError, resolve_run_id
from lakelens.model import CheckResult, Materialization, Run, SchemaSnapshot, to_epoch

if TYPE_CHECKING:
    import sqlalchemy as sa

    from lakelens.analysis.trace import SpanNode, Trace

__all__ = [
    "AssetDiff",
    "Change",
    "CheckDiff",
    "ColumnChange",
    "NoPreviousRunError",
    "RunDiff",
    "RunRecord",
    "SchemaDiff",
    "SpanDiff",
    "compare",
    "diff_runs",
    "load_run",
    "previous_run_id",
]


class NoPreviousRunError(UnknownRunError):
    """A run has no earlier run of its job to be compared with."""


@dataclass(frozen=True)
class Change:
    """One number in run A and in run B (None: not recorded there)."""

    a: float | None
    b: float | None

    @property
    def delta(self) -> float | None:
        # Rounded: 2.4 - 0.65 is 1.7499999999999998 in binary floating point.
        return None if self.a is None or self.b is None else round(self.b - self.a, 6)

    @property
    def percent(self) -> float | None:
        """The change as a percentage of A (None when A is 0 or either side is missing)."""
        delta = self.delta
        return None if delta is None or not self.a else delta / abs(self.a) * 100.0

    @property
    def changed(self) -> bool:
        return self.a != self.b

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "delta": self.delta, "percent": self.percent}


@dataclass
class AssetDiff:
    """An asset materialized by either run: its outcome, rows, bytes and duration in each."""

    asset: str
    status_a: str | None
    status_b: str | None
    rows: Change
    bytes: Change
    duration: Change
    error_a: str | None = None
    error_b: str | None = None

    @property
    def only(self) -> str | None:
        """'a' or 'b' when only that run materialized the asset."""
        if self.status_b is None:
            return "a"
        return "b" if self.status_a is None else None

    @property
    def newly_failing(self) -> bool:
        return self.status_b == "failure" and self.status_a != "failure"

    def to_dict(self) -> dict[str, Any]:
        return {
            "asset": self.asset,
            "status": {"a": self.status_a, "b": self.status_b},
            "only_in": self.only,
            "rows": self.rows.to_dict(),
            "bytes": self.bytes.to_dict(),
            "duration_seconds": self.duration.to_dict(),
            "error": {"a": self.error_a, "b": self.error_b},
        }


@dataclass
class SpanDiff:
    """The spans with one name under the same parents: how many ran in each run, how long in
    total, and how many ended in error."""

    path: tuple[str, ...]
    count_a: int
    count_b: int
    duration: Change
    errors_a: int = 0
    errors_b: int = 0

    @property
    def name(self) -> str:
        return self.path[-1]

    @property
    def depth(self) -> int:
        return len(self.path) - 1

    @property
    def only(self) -> str | None:
        if not self.count_b:
            return "a"
        return "b" if not self.count_a else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": list(self.path),
            "only_in": self.only,
            "count": {"a": self.count_a, "b": self.count_b},
            "duration_seconds": self.duration.to_dict(),
            "errors": {"a": self.errors_a, "b": self.errors_b},
        }


# How a check's outcome moved from A to B, in the order a reader needs them.
CHECK_CHANGES = (
    "newly_failing",  # passed in A, failed in B
    "new_failing",  # not run in A, failed in B
    "still_failing",
    "fixed",  # failed in A, passed in B
    "removed",  # ran in A only
    "new_passing",
    "passing",
)


@dataclass
class CheckDiff:
    """One check of one asset: its outcome in each run (None: not run there)."""

    asset: str
    name: str
    a: CheckResult | None
    b: CheckResult | None

    @property
    def passed_a(self) -> bool | None:
        return None if self.a is None else self.a.passed

    @property
    def passed_b(self) -> bool | None:
        return None if self.b is None else self.b.passed

    @property
    def severity(self) -> str:
        latest = self.b or self.a
        return latest.severity if latest is not None else "warning"

    @property
    def change(self) -> str:
        """One of CHECK_CHANGES."""
        if self.passed_b is None:
            return "removed"
        if self.passed_a is None:
            return "new_passing" if self.passed_b else "new_failing"
        if self.passed_a and not self.passed_b:
            return "newly_failing"
        if not self.passed_a and self.passed_b:
            return "fixed"
        return "passing" if self.passed_b else "still_failing"

    def to_dict(self) -> dict[str, Any]:
        def side(result: CheckResult | None) -> dict[str, Any] | None:
            if result is None:
                return None
            return {
                "passed": result.passed,
                "severity": result.severity,
                "value": result.value,
                "threshold": result.threshold,
                "valid_rows": result.valid_rows,
                "total_rows": result.total_rows,
                "message": result.message,
            }

        return {
            "asset": self.asset,
            "name": self.name,
            "change": self.change,
            "severity": self.severity,
            "a": side(self.a),
            "b": side(self.b),
        }


@dataclass(frozen=True)
class ColumnChange:
    column: str
    change: str  # added, removed, type_changed
    type_a: str | None
    type_b: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "change": self.change,
            "type_a": self.type_a,
            "type_b": self.type_b,
        }


@dataclass
class SchemaDiff:
    """An asset's columns as last recorded when each run ended (None: no schema known then)."""

    asset: str
    a: SchemaSnapshot | None
    b: SchemaSnapshot | None
    changes: list[ColumnChange] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def to_dict(self) -> dict[str, Any]:
        def side(snap: SchemaSnapshot | None) -> dict[str, Any] | None:
            if snap is None:
                return None
            return {
                "hash": snap.hash,
                "recorded_at": to_epoch(snap.time),
                "run_id": snap.run_id,
                "columns": [list(c) for c in snap.columns],
            }

        return {
            "asset": self.asset,
            "changed": self.changed,
            "changes": [c.to_dict() for c in self.changes],
            "a": side(self.a),
            "b": side(self.b),
        }


@dataclass
class RunRecord:
    """What the comparison reads about one run."""

    run: Run
    materializations: list[Materialization] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    trace: Trace | None = None
    # Asset → the schema snapshot in effect when the run ended.
    schemas: dict[str, SchemaSnapshot] = field(default_factory=dict)


@dataclass
class RunDiff:
    """Run A (the earlier, usually) against run B."""

    a: Run
    b: Run
    duration: Change
    assets: list[AssetDiff]
    spans: list[SpanDiff]
    checks: list[CheckDiff]
    schemas: list[SchemaDiff]
    warnings: list[str] = field(default_factory=list)

    @property
    def same_job(self) -> bool:
        return self.a.job == self.b.job

    @property
    def status_changed(self) -> bool:
        return self.a.status != self.b.status

    @property
    def start_gap_seconds(self) -> float | None:
        """How long after A's start B started (negative: B started first)."""
        if self.a.start_time is None or self.b.start_time is None:
            return None
        return (self.b.start_time - self.a.start_time).total_seconds()

    def checks_by_change(self, *changes: str) -> list[CheckDiff]:
        return [c for c in self.checks if c.change in changes]

    @property
    def schema_changes(self) -> list[SchemaDiff]:
        return [s for s in self.schemas if s.changed]

    def counts(self) -> dict[str, int]:
        """How many of each kind of change, for a one-line summary."""
        out = {change: len(self.checks_by_change(change)) for change in CHECK_CHANGES}
        out.update(
            schema_changes=len(self.schema_changes),
            assets_only_in_a=sum(1 for d in self.assets if d.only == "a"),
            assets_only_in_b=sum(1 for d in self.assets if d.only == "b"),
            spans_only_in_a=sum(1 for d in self.spans if d.only == "a"),
            spans_only_in_b=sum(1 for d in self.spans if d.only == "b"),
        )
        return out

    def to_dict(self) -> dict[str, Any]:
        from lakelens.analysis.shapes import run_dict

        return {
            "a": run_dict(self.a),
            "b": run_dict(self.b),
            "same_job": self.same_job,
            "warnings": self.warnings,
            "status": {"a": self.a.status, "b": self.b.status, "changed": self.status_changed},
            "error": {
                "a": _error(self.a.error_type, self.a.error_message),
                "b": _error(self.b.error_type, self.b.error_message),
            },
            "duration_seconds": self.duration.to_dict(),
            "start_gap_seconds": self.start_gap_seconds,
            "counts": self.counts(),
            "checks": [c.to_dict() for c in self.checks],
            "schemas": [s.to_dict() for s in self.schemas],
            "assets": [d.to_dict() for d in self.assets],
            "spans": [s.to_dict() for s in self.spans],
        }


# -- reading --------------------------------------------------------------------------------------


def previous_run_id(conn: Reader | sa.Connection, run_id: str) -> str | None:
    """The run of the same job that started last before `run_id` (None: it is the first)."""
    db = borrow(conn)
    row = db.row("SELECT job, start_time FROM runs WHERE run_id = :run_id", {"run_id": run_id})
    if row is None:
        raise UnknownRunError(f"No run {run_id!r}; `lakelens runs` lists recent runs.")
    job, start = row
    if start is None:
        return None
    return db.value(
        "SELECT run_id FROM runs WHERE job = :job AND run_id <> :run_id "
        "AND (start_time < :start OR (start_time = :start AND run_id < :run_id)) "
        "ORDER BY start_time DESC, run_id DESC LIMIT 1",
        {"job": job, "run_id": run_id, "start": start},
    )


def load_run(conn: Reader | sa.Connection, run_id: str) -> RunRecord:
    """Run `run_id` (a full id) with its materializations, checks and spans."""
    from lakelens.analysis.trace import load_trace
    from lakelens.store import reads

    found = reads.runs(conn, run_id=run_id)
    if not found:
        raise UnknownRunError(f"No run {run_id!r}; `lakelens runs` lists recent runs.")
    return RunRecord(
        run=found[0],
        materializations=reads.materializations(conn, run_id=run_id),
        checks=reads.check_results(conn, run_id=run_id),
        trace=load_trace(conn, run_id),
    )


def diff_runs(conn: Reader | sa.Connection, a: str | None, b: str) -> RunDiff:
    """Compare run `a` with run `b` (ids or unique prefixes); with `a` None, `b` is compared
    with the run of its job that started before it."""
    full_b = resolve_run_id(conn, b)
    if a is None:
        full_a = previous_run_id(conn, full_b)
        if full_a is None:
            job = borrow(conn).value(
                "SELECT job FROM runs WHERE run_id = :run_id", {"run_id": full_b}
            )
            raise NoPreviousRunError(
                f"Run {full_b!r} is the first run of job {job!r}: there is no earlier run to "
                f"compare it with. Give two run ids (`lakelens runs --job {job}` lists them)."
            )
    else:
        full_a = resolve_run_id(conn, a)
    record_a, record_b = load_run(conn, full_a), load_run(conn, full_b)
    assets = sorted(_assets_of(record_a) | _assets_of(record_b))
    history = _schema_history(conn, assets)
    record_a.schemas = _schemas_at(record_a.run, history, record_a.materializations)
    record_b.schemas = _schemas_at(record_b.run, history, record_b.materializations)
    return compare(record_a, record_b)


def _assets_of(record: RunRecord) -> set[str]:
    return {m.asset for m in record.materializations} | {c.asset for c in record.checks}


def _schema_history(
    conn: Reader | sa.Connection, assets: list[str]
) -> dict[str, list[SchemaSnapshot]]:
    """Every stored snapshot of `assets`, oldest first (a snapshot is stored only on change)."""
    import json

    from lakelens.model import from_epoch

    history: dict[str, list[SchemaSnapshot]] = {}
    if not assets:
        return history
    for asset, moment, digest, columns, run_id in borrow(conn).rows(
        "SELECT asset, time, hash, columns, run_id FROM schema_snapshots "
        "WHERE asset IN :assets ORDER BY time, id",
        {"assets": assets},
    ):
        try:
            parsed = [(str(c[0]), str(c[1])) for c in json.loads(columns)]
        except (ValueError, TypeError, IndexError):
            continue
        history.setdefault(asset, []).append(
            SchemaSnapshot(asset, parsed, time=from_epoch(moment), hash=digest, run_id=run_id)
        )
    return history


def _schemas_at(
    run: Run, history: dict[str, list[SchemaSnapshot]], materializations: list[Materialization]
) -> dict[str, SchemaSnapshot]:
    """Per asset, the snapshot the run recorded itself, else the latest one stored by the time
    the run ended (its last known moment when it has not ended)."""
    moments = [run.end_time, run.start_time, *(m.end_time for m in materializations)]
    known = [m.timestamp() for m in moments if m is not None]
    bound = to_epoch(run.end_time) if run.end_time is not None else max(known, default=None)
    out: dict[str, SchemaSnapshot] = {}
    for asset, snapshots in history.items():
        own = [s for s in snapshots if s.run_id == run.run_id]
        if own:
            out[asset] = own[-1]
            continue
        if bound is None:
            continue
        earlier = [s for s in snapshots if s.time is not None and s.time.timestamp() <= bound]
        if earlier:
            out[asset] = earlier[-1]
    return out


# -- comparing ------------------------------------------------------------------------------------


def compare(a: RunRecord, b: RunRecord) -> RunDiff:
    """The differences between two runs as read by `load_run`."""
    warnings = []
    if a.run.run_id == b.run.run_id:
        warnings.append("Both sides are the same run: nothing can differ.")
    if a.run.job != b.run.job:
        warnings.append(
            f"The runs are of different jobs ({a.run.job!r} and {b.run.job!r}); "
            "compared all the same."
        )
    for label, record in (("A", a), ("B", b)):
        if record.run.status in ("queued", "started"):
            warnings.append(
                f"Run {label} is still {record.run.status}: its figures may not be final."
            )
    return RunDiff(
        a=a.run,
        b=b.run,
        duration=Change(_ms(a.run.duration_seconds), _ms(b.run.duration_seconds)),
        assets=_asset_diffs(a, b),
        spans=_span_diffs(a, b),
        checks=_check_diffs(a, b),
        schemas=_schema_diffs(a, b),
        warnings=warnings,
    )


def _ms(seconds: float | None) -> float | None:
    """Durations to the millisecond: stored times carry microsecond noise, which is no change."""
    return None if seconds is None else round(seconds, 3)


def _error(kind: str | None, message: str | None) -> str | None:
    if kind and message:
        return f"{kind}: {message}"
    return kind or message or None


@dataclass
class _AssetTotals:
    status: str | None = None
    rows: float | None = None
    bytes: float | None = None
    duration: float | None = None
    error: str | None = None


def _add(total: float | None, value: float | None) -> float | None:
    if value is None:
        return total
    return value if total is None else total + value


def _totals(record: RunRecord) -> dict[str, _AssetTotals]:
    """Per asset, summed over its materializations in the run (a failure among them wins)."""
    out: dict[str, _AssetTotals] = {}
    for mat in record.materializations:
        t = out.setdefault(mat.asset, _AssetTotals())
        if t.status != "failure":
            t.status = mat.status
        t.rows = _add(t.rows, mat.rows)
        t.bytes = _add(t.bytes, mat.bytes)
        t.duration = _add(t.duration, mat.duration_seconds)
        t.error = t.error or _error(mat.error_type, mat.error_message)
    return out


def _size(change: Change) -> float:
    """How big a change is, relative where it can be (for ordering)."""
    if change.percent is not None:
        return abs(change.percent)
    return 100.0 if change.changed else 0.0


def _asset_diffs(a: RunRecord, b: RunRecord) -> list[AssetDiff]:
    totals_a, totals_b = _totals(a), _totals(b)
    diffs = []
    for asset in sorted(totals_a.keys() | totals_b.keys()):
        ta, tb = totals_a.get(asset, _AssetTotals()), totals_b.get(asset, _AssetTotals())
        diffs.append(
            AssetDiff(
                asset=asset,
                status_a=ta.status,
                status_b=tb.status,
                rows=Change(ta.rows, tb.rows),
                bytes=Change(ta.bytes, tb.bytes),
                duration=Change(_ms(ta.duration), _ms(tb.duration)),
                error_a=ta.error,
                error_b=tb.error,
            )
        )
    # Newly failing first, then assets one run lacks, then the biggest relative change.
    diffs.sort(
        key=lambda d: (
            not d.newly_failing,
            d.only is None,
            d.status_a == d.status_b,
            -max(_size(d.rows), _size(d.duration)),
            d.asset,
        )
    )
    return diffs


@dataclass
class _SpanTotals:
    count: int = 0
    duration: float | None = None
    errors: int = 0


def _span_totals(
    record: RunRecord,
) -> tuple[list[tuple[str, ...]], dict[tuple[str, ...], _SpanTotals]]:
    """Per path of span names (root first), in the order the trace first shows each."""
    order: list[tuple[str, ...]] = []
    out: dict[tuple[str, ...], _SpanTotals] = {}
    if record.trace is None:
        return order, out
    stack: list[tuple[SpanNode, tuple[str, ...]]] = [
        (node, (node.span.name,)) for node in reversed(record.trace.roots)
    ]
    while stack:
        node, path = stack.pop()
        if path not in out:
            order.append(path)
            out[path] = _SpanTotals()
        totals = out[path]
        totals.count += 1
        totals.duration = _add(totals.duration, node.duration_seconds)
        totals.errors += node.span.status == "error"
        stack.extend((child, (*path, child.span.name)) for child in reversed(node.children))
    return order, out


def _span_diffs(a: RunRecord, b: RunRecord) -> list[SpanDiff]:
    order_a, totals_a = _span_totals(a)
    order_b, totals_b = _span_totals(b)
    paths = order_a + [p for p in order_b if p not in totals_a]
    diffs = []
    for path in paths:
        ta, tb = totals_a.get(path, _SpanTotals()), totals_b.get(path, _SpanTotals())
        diffs.append(
            SpanDiff(
                path=path,
                count_a=ta.count,
                count_b=tb.count,
                duration=Change(_ms(ta.duration), _ms(tb.duration)),
                errors_a=ta.errors,
                errors_b=tb.errors,
            )
        )
    # The biggest change in time first; spans one run lacks count with their whole duration.
    diffs.sort(
        key=lambda d: (
            -abs(
                d.duration.delta
                if d.duration.delta is not None
                else (d.duration.a or d.duration.b or 0.0)
            )
        )
    )
    return diffs


def _check_diffs(a: RunRecord, b: RunRecord) -> list[CheckDiff]:
    # The last result of each check in a run is its outcome there (results come oldest first).
    last_a = {(c.asset, c.name): c for c in a.checks}
    last_b = {(c.asset, c.name): c for c in b.checks}
    diffs = [
        CheckDiff(asset, name, last_a.get((asset, name)), last_b.get((asset, name)))
        for asset, name in sorted(last_a.keys() | last_b.keys())
    ]
    rank = {change: i for i, change in enumerate(CHECK_CHANGES)}
    diffs.sort(key=lambda d: (rank[d.change], d.asset, d.name))
    return diffs


def _schema_diffs(a: RunRecord, b: RunRecord) -> list[SchemaDiff]:
    diffs = []
    for asset in sorted(a.schemas.keys() | b.schemas.keys()):
        sa_, sb = a.schemas.get(asset), b.schemas.get(asset)
        changes: list[ColumnChange] = []
        if sa_ is not None and sb is not None:
            before, after = dict(sa_.columns), dict(sb.columns)
            for column, kind in sb.columns:
                if column not in before:
                    changes.append(ColumnChange(column, "added", None, kind))
                elif before[column] != kind:
                    changes.append(ColumnChange(column, "type_changed", before[column], kind))
            changes += [
                ColumnChange(column, "removed", kind, None)
                for column, kind in sa_.columns
                if column not in after
            ]
        diffs.append(SchemaDiff(asset, sa_, sb, changes))
    diffs.sort(key=lambda d: (not d.changed, d.asset))
    return diffs
