"""What each asset's materializations consumed over a period, and what that cost.

Pure: it reads the store and returns a `CostReport`; the CLI and the server only format it.
The period is half-open, `until - period <= start_time < until`, like the summary's window.
Every materialization counts, failed ones too: a failed run still burned its CPU.

- bytes processed: the sum of `materializations.bytes`; a GB is 10^9 bytes.
- estimated cost: GB processed × price per GB + CPU hours × price per CPU hour.
- storage growth: the bytes written in the period against the bytes written in the
  same-length period just before it. It is only compared when the store's recorded history
  (its earliest materialization) reaches back to the start of that previous period; otherwise
  the previous period was not fully recorded (or was pruned) and the growth is "n/a".
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from lakelens.analysis._db import connection
from lakelens.errors import InvalidArgumentError
from lakelens.store import schema

if TYPE_CHECKING:
    from lakelens.store import Store

__all__ = [
    "BYTES_PER_GB",
    "DEFAULT_PRICE_PER_CPU_HOUR",
    "DEFAULT_PRICE_PER_GB",
    "MONTH_SECONDS",
    "AssetCost",
    "CostReport",
    "Growth",
    "Prices",
    "Usage",
    "cost_report",
    "parse_price",
    "resolve_prices",
]

DEFAULT_PRICE_PER_GB = 0.023
DEFAULT_PRICE_PER_CPU_HOUR = 0.05
PRICE_PER_GB_ENV = "LAKELENS_PRICE_PER_GB"
PRICE_PER_CPU_HOUR_ENV = "LAKELENS_PRICE_PER_CPU_HOUR"
BYTES_PER_GB = 1e9
# A period at least this long is compared "month over month".
MONTH_SECONDS = 28 * 86400.0


@dataclass(frozen=True)
class Prices:
    """What a GB processed and a CPU hour cost, in whatever currency the prices are in."""

    per_gb: float = DEFAULT_PRICE_PER_GB
    per_cpu_hour: float = DEFAULT_PRICE_PER_CPU_HOUR


def parse_price(value: object, *, name: str) -> float:
    """A price as a float >= 0; InvalidArgumentError naming `name` otherwise."""
    if isinstance(value, bool):
        number = math.nan
    elif isinstance(value, (int, float)):
        number = float(value)
    else:
        try:
            number = float(str(value).strip().lstrip("$"))
        except ValueError:
            number = math.nan
    if not math.isfinite(number) or number < 0:
        raise InvalidArgumentError(
            f"Invalid {name}={value!r}: expected a price of 0 or more, like 0.023."
        )
    return number


def resolve_prices(
    per_gb: object = None,
    per_cpu_hour: object = None,
    *,
    env: Mapping[str, str] | None = None,
    names: tuple[str, str] = ("price_per_gb", "price_per_cpu_hour"),
) -> Prices:
    """Prices from the arguments, else LAKELENS_PRICE_PER_GB / LAKELENS_PRICE_PER_CPU_HOUR, else the defaults.

    `names` are what an error calls the two arguments (the CLI passes its option names).
    """
    env = os.environ if env is None else env
    chosen: list[float] = []
    for value, name, variable, default in (
        (per_gb, names[0], PRICE_PER_GB_ENV, DEFAULT_PRICE_PER_GB),
        (per_cpu_hour, names[1], PRICE_PER_CPU_HOUR_ENV, DEFAULT_PRICE_PER_CPU_HOUR),
    ):
        if value is not None:
            chosen.append(parse_price(value, name=name))
        elif env.get(variable, "").strip():
            chosen.append(parse_price(env[variable], name=variable))
        else:
            chosen.append(default)
    return Prices(*chosen)


@dataclass(frozen=True)
class Growth:
    """Bytes written in the period against the period before.

    state: "compared" (change is the fraction, +0.12 = 12% more), "n/a" (the recorded history
    does not reach back to the previous period's start), "new" (nothing written before, something
    now) or "empty" (nothing written in either period). previous_bytes is None when "n/a".
    """

    current_bytes: int
    previous_bytes: int | None
    change: float | None
    state: str

    @classmethod
    def compare(cls, current: int, previous: int | None) -> Growth:
        if previous is None:
            return cls(current, None, None, "n/a")
        if previous == 0:
            return cls(current, 0, None, "new" if current else "empty")
        return cls(current, previous, (current - previous) / previous, "compared")


@dataclass(frozen=True)
class Usage:
    """What materializations consumed in the period and what it cost (cost_per_gb: None without bytes)."""

    runs: int
    materializations: int
    rows: int
    bytes: int
    cpu_seconds: float
    peak_memory_bytes: int | None
    bytes_cost: float
    cpu_cost: float
    cost: float
    cost_per_gb: float | None
    growth: Growth

    @classmethod
    def priced(
        cls,
        prices: Prices,
        *,
        runs: int,
        materializations: int,
        rows: int,
        size: int,
        cpu_seconds: float,
        peak_memory_bytes: int | None,
        growth: Growth,
    ) -> Usage:
        bytes_cost = size / BYTES_PER_GB * prices.per_gb
        cpu_cost = cpu_seconds / 3600.0 * prices.per_cpu_hour
        cost = bytes_cost + cpu_cost
        return cls(
            runs=runs,
            materializations=materializations,
            rows=rows,
            bytes=size,
            cpu_seconds=cpu_seconds,
            peak_memory_bytes=peak_memory_bytes,
            bytes_cost=bytes_cost,
            cpu_cost=cpu_cost,
            cost=cost,
            cost_per_gb=cost / (size / BYTES_PER_GB) if size else None,
            growth=growth,
        )


@dataclass(frozen=True)
class AssetCost:
    """One asset's usage over the period."""

    asset: str
    owner: str | None
    layer: str | None
    usage: Usage


@dataclass(frozen=True)
class CostReport:
    """Everything `lakelens metrics cost` shows: assets by estimated cost (highest first), and totals.

    history_start is the earliest recorded materialization (None: nothing recorded yet).
    """

    since: float
    until: float
    period_seconds: float
    previous_since: float
    month_over_month: bool
    prices: Prices
    history_start: float | None
    assets: tuple[AssetCost, ...]
    total: Usage

    @property
    def recorded(self) -> bool:
        return self.history_start is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cost_report(
    store: Store | sa.Connection | sa.Engine,
    *,
    period: float,
    until: float | None = None,
    prices: Prices | None = None,
) -> CostReport:
    """Usage and estimated cost per asset over [until - period, until) (until None: now)."""
    if not math.isfinite(period) or period <= 0:
        raise InvalidArgumentError(f"Invalid period={period!r}: expected seconds above 0.")
    prices = prices or Prices()
    until = time.time() if until is None else until
    since = until - period
    previous_since = since - period
    with connection(store) as conn:
        m = schema.materializations
        history_start = conn.execute(sa.select(sa.func.min(m.c.start_time))).scalar()
        reaches_back = history_start is not None and history_start <= previous_since
        per_asset = _per_asset(conn, previous_since, since, until)
        total_runs = conn.execute(
            sa.select(sa.func.count(sa.distinct(m.c.run_id))).where(
                m.c.start_time >= since, m.c.start_time < until
            )
        ).scalar_one()

    assets: list[AssetCost] = []
    previous_total = 0
    for row in per_asset:
        previous_total += int(row.previous_bytes or 0)
        if not row.materializations:
            continue  # active only in the previous period: part of the total's growth only
        size = int(row.bytes or 0)
        usage = Usage.priced(
            prices,
            runs=int(row.runs),
            materializations=int(row.materializations),
            rows=int(row.rows or 0),
            size=size,
            cpu_seconds=float(row.cpu_seconds or 0.0),
            peak_memory_bytes=None if row.peak is None else int(row.peak),
            growth=Growth.compare(size, int(row.previous_bytes or 0) if reaches_back else None),
        )
        assets.append(AssetCost(row.asset, row.owner, row.layer, usage))
    assets.sort(key=lambda a: (-a.usage.cost, a.asset))

    total_bytes = sum(a.usage.bytes for a in assets)
    peaks = [a.usage.peak_memory_bytes for a in assets if a.usage.peak_memory_bytes is not None]
    total = Usage.priced(
        prices,
        runs=int(total_runs),
        materializations=sum(a.usage.materializations for a in assets),
        rows=sum(a.usage.rows for a in assets),
        size=total_bytes,
        cpu_seconds=sum(a.usage.cpu_seconds for a in assets),
        peak_memory_bytes=max(peaks) if peaks else None,
        growth=Growth.compare(total_bytes, previous_total if reaches_back else None),
    )
    return CostReport(
        since=since,
        until=until,
        period_seconds=period,
        previous_since=previous_since,
        month_over_month=period >= MONTH_SECONDS,
        prices=prices,
        history_start=None if history_start is None else float(history_start),
        assets=tuple(assets),
        total=total,
    )


def _per_asset(conn: sa.Connection, previous_since: float, since: float, until: float) -> list[Any]:
    """One range scan over both periods (ix_mat_start), split by CASE into current and previous."""
    m, a = schema.materializations, schema.assets
    current = m.c.start_time >= since

    def now_only(column: Any) -> Any:
        return sa.case((current, column))

    query = (
        sa.select(
            m.c.asset,
            a.c.owner,
            a.c.layer,
            sa.func.count(now_only(m.c.id)).label("materializations"),
            sa.func.count(sa.distinct(now_only(m.c.run_id))).label("runs"),
            sa.func.sum(now_only(m.c.rows)).label("rows"),
            sa.func.sum(now_only(m.c.bytes)).label("bytes"),
            sa.func.sum(now_only(m.c.cpu_seconds)).label("cpu_seconds"),
            sa.func.max(now_only(m.c.peak_memory_bytes)).label("peak"),
            sa.func.sum(sa.case((sa.not_(current), m.c.bytes))).label("previous_bytes"),
        )
        .select_from(m.outerjoin(a, a.c.name == m.c.asset))
        .where(m.c.start_time >= previous_since, m.c.start_time < until)
        .group_by(m.c.asset, a.c.owner, a.c.layer)
    )
    return list(conn.execute(query))
