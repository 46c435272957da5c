"""Column profiles over time: an asset's latest profile, how it changed against the one before,
one column's history, and the row count trend (profiles and materializations together).

The CLI (`lakelens profile`, `lakelens metrics asset`), the asset page and the API all read
these, so they show the same numbers.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from lakelens.analysis._db import Reader, borrow

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = [
    "ColumnChange",
    "ProfileReport",
    "RowCountPoint",
    "StoredProfile",
    "column_history",
    "compare",
    "profile_report",
    "profiles",
    "row_count_trend",
]

# A change worth pointing at: the null rate moved by 5 points, the mean or the number of
# distinct values by 10% (both relative to the previous profile).
NULL_RATE_SHIFT = 0.05
RELATIVE_SHIFT = 0.10
# History read per request at most (a profile holds up to 500 columns).
MAX_HISTORY = 500


@dataclass(frozen=True)
class StoredProfile:
    """One recorded profile, as the store holds it."""

    id: int
    asset: str
    run_id: str | None
    time: float
    row_count: int | None
    sampled_rows: int | None
    source: str
    columns: dict[str, dict[str, Any]]
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ColumnChange:
    """One column's change against the previous profile (None: not comparable)."""

    column: str
    # changed | added | removed | same | failed (not profiled this time: notes say why)
    status: str
    type_before: str | None = None
    type_after: str | None = None
    null_rate_before: float | None = None
    null_rate_after: float | None = None
    mean_before: float | None = None
    mean_after: float | None = None
    distinct_before: int | None = None
    distinct_after: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def null_rate_shift(self) -> float | None:
        if self.null_rate_before is None or self.null_rate_after is None:
            return None
        return self.null_rate_after - self.null_rate_before

    @property
    def mean_shift(self) -> float | None:
        """Relative change of the mean (0.1 = 10% higher)."""
        return _relative(self.mean_before, self.mean_after)

    @property
    def distinct_shift(self) -> float | None:
        return _relative(self.distinct_before, self.distinct_after)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            null_rate_shift=self.null_rate_shift,
            mean_shift=self.mean_shift,
            distinct_shift=self.distinct_shift,
        )
        return data


@dataclass(frozen=True)
class RowCountPoint:
    """Rows the asset had (or wrote) at a moment, from a profile or a materialization."""

    time: float
    rows: int
    source: str  # profile | materialization
    run_id: str | None = None


@dataclass(frozen=True)
class ProfileReport:
    """An asset's latest profile, its changes against the previous one, and its history."""

    asset: str
    latest: StoredProfile | None
    previous: StoredProfile | None
    changes: list[ColumnChange]
    history: list[StoredProfile]  # newest first, the latest included

    def to_dict(self) -> dict[str, Any]:
        return {
            "asset": self.asset,
            "latest": None if self.latest is None else self.latest.to_dict(),
            "previous_id": None if self.previous is None else self.previous.id,
            "changes": [c.to_dict() for c in self.changes],
            "history": [
                {
                    "id": p.id,
                    "time": p.time,
                    "run_id": p.run_id,
                    "row_count": p.row_count,
                    "sampled_rows": p.sampled_rows,
                    "source": p.source,
                    "error": p.error,
                }
                for p in self.history
            ],
        }


def _relative(before: float | None, after: float | None) -> float | None:
    if before is None or after is None or before == 0:
        return None
    return (after - before) / abs(before)


def _parse(row: dict[str, Any]) -> StoredProfile:
    try:
        document = json.loads(row["columns"]) if row["columns"] else {}
    except ValueError:
        document = {"error": "the stored profile is not readable JSON"}
    if not isinstance(document, dict):
        document = {}
    columns = document.get("columns")
    return StoredProfile(
        id=int(row["id"]),
        asset=row["asset"],
        run_id=row["run_id"],
        time=float(row["time"]),
        row_count=row["row_count"],
        sampled_rows=row["sampled_rows"],
        source=row["source"],
        columns=columns if isinstance(columns, dict) else {},
        error=document.get("error") if isinstance(document.get("error"), str) else None,
    )


def profiles(
    conn: Reader | sa.Connection, asset: str, *, limit: int = 20, until: float | None = None
) -> list[StoredProfile]:
    """The asset's last `limit` profiles (recorded at `until` or before), newest first."""
    db = borrow(conn)
    params: dict[str, Any] = {"asset": asset, "limit": max(1, min(limit, MAX_HISTORY))}
    bound = ""
    if until is not None:
        bound = " AND time <= :until"
        params["until"] = until
    rows = db.dicts(
        "SELECT id, asset, run_id, time, row_count, sampled_rows, source, columns "
        f"FROM profiles WHERE asset = :asset{bound} ORDER BY time DESC, id DESC LIMIT :limit",
        params,
    )
    return [_parse(r) for r in rows]


def compare(current: StoredProfile, previous: StoredProfile | None) -> list[ColumnChange]:
    """Each column of `current` (and each one `previous` had that is gone) with its change."""
    if previous is None:
        return []
    before = previous.columns
    changes: list[ColumnChange] = []
    for name, now in current.columns.items():
        old = before.get(name)
        if old is None:
            changes.append(ColumnChange(name, "added", type_after=now.get("type")))
            continue
        change = ColumnChange(
            name,
            "same",
            type_before=old.get("type"),
            type_after=now.get("type"),
            null_rate_before=_float(old.get("null_rate")),
            null_rate_after=_float(now.get("null_rate")),
            mean_before=_float(old.get("mean")),
            mean_after=_float(now.get("mean")),
            distinct_before=_int(old.get("distinct")),
            distinct_after=_int(now.get("distinct")),
        )
        notes = _notes(change)
        error = now.get("error")
        if isinstance(error, str) and error:
            # A warehouse monitor could not profile it (or only in part): say so, and compare
            # nothing of a column with no statistics (its type may not be known either).
            if "count" not in now:
                changes.append(ColumnChange(name, "failed", notes=[f"not profiled: {error}"]))
                continue
            notes.append(f"partly profiled: {error}")
        if notes:
            change = ColumnChange(**{**asdict(change), "status": "changed", "notes": notes})
        changes.append(change)
    for name, old in before.items():
        if name not in current.columns:
            changes.append(ColumnChange(name, "removed", type_before=old.get("type")))
    return changes


def _notes(change: ColumnChange) -> list[str]:
    notes = []
    if change.type_before != change.type_after:
        notes.append(f"type {change.type_before} → {change.type_after}")
    shift = change.null_rate_shift
    if shift is not None and abs(shift) >= NULL_RATE_SHIFT:
        notes.append(f"nulls {change.null_rate_before:.1%} → {change.null_rate_after:.1%}")
    mean = change.mean_shift
    if mean is not None and abs(mean) >= RELATIVE_SHIFT:
        notes.append(f"mean {mean:+.0%}")
    distinct = change.distinct_shift
    if distinct is not None and abs(distinct) >= RELATIVE_SHIFT:
        notes.append(f"distinct {distinct:+.0%}")
    return notes


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def profile_report(conn: Reader | sa.Connection, asset: str, *, history: int = 20) -> ProfileReport:
    """The latest profile of `asset` that has columns, the change against the one before it,
    and the last `history` profiles (a failed profile is in the history, not compared)."""
    found = profiles(conn, asset, limit=max(history, 2))
    usable = [p for p in found if p.columns]
    latest = found[0] if found else None
    if latest is not None and not latest.columns and usable:
        latest = usable[0]
    previous = next(
        (p for p in usable if latest is not None and p.id != latest.id and p.time <= latest.time),
        None,
    )
    changes = compare(latest, previous) if latest is not None else []
    return ProfileReport(asset, latest, previous, changes, found[:history])


def column_history(history: list[StoredProfile], column: str) -> list[dict[str, Any]]:
    """One column's statistics in each profile of `history` (newest first) that has it."""
    rows = []
    for p in history:
        stats = p.columns.get(column)
        if stats is not None:
            rows.append({"time": p.time, "run_id": p.run_id, "row_count": p.row_count, **stats})
    return rows


def row_count_trend(
    conn: Reader | sa.Connection, asset: str, *, limit: int = 50
) -> list[RowCountPoint]:
    """The last `limit` row counts of the asset, oldest first: each profile's, and each
    materialization's rows where no profile of the same run gave them."""
    db = borrow(conn)
    profiled = db.rows(
        "SELECT time, row_count, run_id FROM profiles WHERE asset = :asset "
        "AND row_count IS NOT NULL ORDER BY time DESC, id DESC LIMIT :limit",
        {"asset": asset, "limit": limit},
    )
    written = db.rows(
        "SELECT coalesce(end_time, start_time), rows, run_id FROM materializations "
        "WHERE asset = :asset AND rows IS NOT NULL AND coalesce(end_time, start_time) IS NOT NULL "
        "ORDER BY start_time DESC, id DESC LIMIT :limit",
        {"asset": asset, "limit": limit},
    )
    runs = {r[2] for r in profiled if r[2] is not None}
    points = [RowCountPoint(float(t), int(n), "profile", run) for t, n, run in profiled]
    points += [
        RowCountPoint(float(t), int(n), "materialization", run)
        for t, n, run in written
        if run is None or run not in runs
    ]
    points.sort(key=lambda p: p.time)
    return points[-limit:]
