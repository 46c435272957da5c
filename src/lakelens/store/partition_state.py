"""How logs and spans are kept on a store: partitioned by day, or one table (and why).

Read by `lakelens health` through the plain-SQL reader, so the CLI does not import SQLAlchemy
for it; store/partitioning.py makes and drops the partitions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lakelens.store.sql import Reader, borrow

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["PARTITIONED", "Partitioning", "day_name", "day_partitions", "state"]

# Tables partitioned by day, and the column they are ranged on.
PARTITIONED: dict[str, str] = {"logs": "time", "spans": "start_time"}
DAY = 86400


def day_name(table: str, day: int) -> str:
    """`logs_p20261207` for day number `day` (days since the epoch, UTC) of `logs`."""
    return f"{table}_p{dt.datetime.fromtimestamp(day * DAY, dt.timezone.utc):%Y%m%d}"


def _day_of(name: str) -> int | None:
    stamp = name.rpartition("_p")[2]
    if not stamp.isdigit() or len(stamp) != 8:
        return None
    day = dt.datetime.strptime(stamp, "%Y%m%d").replace(tzinfo=dt.timezone.utc)
    return int(day.timestamp()) // DAY


def day_partitions(db: Reader, table: str) -> dict[int, str]:
    """The day partitions of `table`: {day number: partition name}."""
    names = db.column(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass(:table)",
        {"table": table},
    )
    days = {}
    for name in names:
        day = _day_of(name)
        if day is not None and name == day_name(table, day):
            days[day] = name
    return days


@dataclass(frozen=True)
class Partitioning:
    """How a table is kept: "days" (partitioned, and this role can manage them) or "table"
    (prune deletes rows: one table, or `partitioned` by days this role cannot make or drop),
    with a sentence saying why and how to change it."""

    table: str
    mode: str
    note: str | None = None
    partitioned: bool = False


def state(conn: Reader | sa.Connection, table: str = "logs") -> Partitioning:
    """How `table` is kept on this store, for this role (cheap: catalog queries only)."""
    db = borrow(conn)
    if db.dialect != "postgresql":
        return Partitioning(table, "table")
    found = db.row(
        (
            "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = c.oid), "
            "pg_has_role(current_user, c.relowner, 'USAGE') "
            "AND has_schema_privilege(c.relnamespace, 'CREATE') "
            "FROM pg_class c WHERE c.oid = to_regclass(:table)"
        ),
        {"table": table},
    )
    if found is None:  # no such table yet (a store not created or not upgraded)
        return Partitioning(table, "table")
    partitioned, may_manage = found
    if not partitioned:
        return Partitioning(
            table,
            "table",
            f"{table} is one table, not partitioned by day: prune deletes its rows in chunks; "
            "run `lakelens db upgrade` to partition it",
        )
    if not may_manage:
        user = db.value("SELECT current_user")
        return Partitioning(
            table,
            "table",
            f"role {user} cannot create partitions of {table} (it is not the table's owner): "
            f"new days go to {table}_default and prune deletes rows instead of dropping days; "
            f"run lakelens as the owner of {table} or `ALTER TABLE {table} OWNER TO {user}`",
            partitioned=True,
        )
    return Partitioning(table, "days", partitioned=True)
