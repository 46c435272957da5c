"""Maintenance windows: recurring silences ("Sat 00:00-06:00", "Mon-Fri 22:00-02:00",
"daily 02:00-03:00"), declared in lakelens.yaml or added with the CLI. While one is open,
the findings of the assets it covers are silenced: they update, nothing is sent."""

from __future__ import annotations

import fnmatch
import json
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakelens.errors import ConfigError, LakelensError

if TYPE_CHECKING:
    import sqlalchemy as sa

    from lakelens.store import Store

__all__ = ["Window", "add_window", "end_window", "parse_schedule", "stored_windows"]

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FORM = (
    "'Sat 00:00-06:00', 'Mon-Fri 22:00-02:00', 'Sat,Sun 01:00-03:00' or 'daily 02:00-03:00' (UTC)"
)
_PATTERN = re.compile(
    r"^\s*(?P<days>[A-Za-z,\-]+)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s*$"
)


def _minute(text: str, schedule: str) -> int:
    hours, minutes = (int(part) for part in text.split(":"))
    if hours > 24 or minutes > 59 or (hours == 24 and minutes):
        raise ConfigError(
            f"Maintenance window {schedule!r}: {text} is not a time of day; use {_FORM}."
        )
    return hours * 60 + minutes


def _days(text: str, schedule: str) -> frozenset[int]:
    text = text.lower()
    if text in ("daily", "every", "everyday"):
        return frozenset(range(7))
    if text in ("weekdays",):
        return frozenset(range(5))
    if text in ("weekends",):
        return frozenset({5, 6})
    days: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        try:
            a = _DAYS.index(first[:3])
            b = _DAYS.index(last[:3]) if last else a
        except ValueError:
            raise ConfigError(
                f"Maintenance window {schedule!r}: {part!r} is not a day; use {_FORM}."
            ) from None
        day = a
        days.add(day)
        while day != b:
            day = (day + 1) % 7
            days.add(day)
    return frozenset(days)


def parse_schedule(schedule: str) -> tuple[frozenset[int], int, int]:
    """(weekdays with Monday 0, start minute, end minute) of a schedule such as 'Sat 00:00-06:00'."""
    match = _PATTERN.match(schedule or "")
    if not match:
        raise ConfigError(f"Maintenance window {schedule!r} is not a schedule; use {_FORM}.")
    start = _minute(match["start"], schedule)
    end = _minute(match["end"], schedule)
    if start == end:
        raise ConfigError(f"Maintenance window {schedule!r} is empty: its start and end are equal.")
    return _days(match["days"], schedule), start, end


@dataclass(frozen=True)
class Window:
    """One recurring window; `assets` are globs (none: every asset, and findings with none)."""

    name: str
    schedule: str
    days: frozenset[int]
    start: int  # minutes after midnight UTC
    end: int  # an end at or before the start runs past midnight
    assets: tuple[str, ...] = ()
    id: str | None = None  # stored ones (the CLI's)

    @classmethod
    def of(
        cls, name: str, schedule: str, assets: Iterable[str] = (), id: str | None = None
    ) -> Window:
        days, start, end = parse_schedule(schedule)
        return cls(name, schedule, days, start, end, tuple(assets), id)

    def open_at(self, t: float) -> bool:
        minute = int(t // 60) % 1440
        day = int((t // 86400 + 3) % 7)  # 1970-01-01 was a Thursday
        if self.start < self.end:
            return day in self.days and self.start <= minute < self.end
        # Past midnight: the late part belongs to its day, the early part to the day before.
        return (day in self.days and minute >= self.start) or (
            (day - 1) % 7 in self.days and minute < self.end
        )

    def covers(self, asset: str | None) -> bool:
        if not self.assets:
            return True
        return asset is not None and any(fnmatch.fnmatchcase(asset, g) for g in self.assets)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "schedule": self.schedule,
            "assets": list(self.assets),
        }


def stored_windows(conn: sa.Connection, *, now: float | None = None) -> list[Window]:
    """The CLI's windows in force at `now` (all current ones when None)."""
    import sqlalchemy as sa

    from lakelens.store import schema

    w = schema.maintenance_windows
    query = sa.select(w)
    if now is None:
        query = query.where(w.c.ended_at.is_(None))
    else:
        query = query.where(
            w.c.created_at <= now, sa.or_(w.c.ended_at.is_(None), w.c.ended_at > now)
        )
    out = []
    for row in conn.execute(query.order_by(w.c.created_at)):
        try:
            out.append(Window.of(row.name, row.schedule, json.loads(row.assets or "[]"), id=row.id))
        except ConfigError:
            continue  # checked when added; never let one stop alerting
    return out


def add_window(
    store: Store, schedule: str, *, name: str | None, assets: list[str], by: str | None
) -> Window:
    from lakelens.store import schema

    window = Window.of(name or schedule, schedule, assets, id=uuid.uuid4().hex[:12])
    with store.connect() as conn:
        conn.execute(
            schema.maintenance_windows.insert().values(
                id=window.id,
                name=window.name,
                schedule=schedule,
                assets=json.dumps(list(assets)),
                created_by=by,
                created_at=time.time(),
            )
        )
        conn.commit()
    return window


def end_window(store: Store, window_id: str) -> str:
    """End the CLI's window whose id starts with `window_id`; returns its id."""
    import sqlalchemy as sa

    from lakelens.store import schema

    w = schema.maintenance_windows
    with store.connect() as conn:
        ids = list(
            conn.execute(
                sa.select(w.c.id)
                .where(w.c.id.like(window_id.replace("%", "") + "%"), w.c.ended_at.is_(None))
                .limit(2)
            ).scalars()
        )
        if len(ids) != 1:
            raise LakelensError(
                f"{'No' if not ids else 'More than one'} current maintenance window id starts "
                f"with {window_id!r}; `lakelens alerts maintenance list` lists them."
            )
        conn.execute(w.update().where(w.c.id == ids[0]).values(ended_at=time.time()))
        conn.commit()
    return str(ids[0])
