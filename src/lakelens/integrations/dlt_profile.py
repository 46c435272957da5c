"""Column profiles of what a dlt run loaded, read back from the destination (opt-in).

    lakelens_dlt.run(pipeline, source(), profile=True)
    lakelens_dlt.record(pipeline, load_info, profile=True)
    lakelens_dlt.observe(profile=True)

For each table the run loaded without failure, the rows of this run's load packages (by
`_dlt_load_id`, when the table has it; a child table: all of its rows) are read back with one
`SELECT … LIMIT` through the pipeline's SQL client (dlt's dataset interface needs a sqlglot
older than lakelens' dbt extra installs), dlt's own `_dlt_*` columns left out, at most
`READ_ROWS` rows (the first ones the destination returns, not a uniform sample), as a pyarrow
Table when pyarrow and the driver allow it, else as rows. They are profiled with
`lakelens.profile`'s rules.

The row count is what dlt counted for the table in this run; for a child table, whose rows of
this run cannot be told apart, it is the number of rows read. Reading costs one query per
table; a table that cannot be read (no SQL client, no `LIMIT` as on SQL Server) gets a profile
whose `error` says why, and the pipeline is never failed.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from lakelens.model import Profile, from_epoch
from lakelens.sdk._runtime import RT

__all__ = ["READ_ROWS", "profile_tables"]

READ_ROWS = 1_000_000
SOURCE = "dlt"


def profile_tables(pipeline: Any, recording: Any) -> int:
    """Queue a profile for every table `recording` (a dlt._Recording) loaded; returns how many."""
    from lakelens.integrations.dlt import _internal, table_asset

    loaded = [
        table
        for name, table in recording.tables.items()
        if not _internal(name) and table.completed and not table.failures and not table.pending
    ]
    if not loaded:
        return 0
    queued = 0
    for table in loaded:
        profile = Profile(
            asset=table_asset(recording.dataset, table.name),
            time=from_epoch(recording.end),
            run_id=recording.run_id,
            row_count=table.rows,
            source=SOURCE,
        )
        try:
            found, this_run = _profile_table(pipeline, recording, table)
            profile.columns = found.columns
            if profile.row_count is None or not this_run:
                profile.row_count = found.row_count
            if found.sampled_rows is not None or found.row_count >= READ_ROWS:
                profile.sampled_rows = found.sampled_rows or found.row_count
        except Exception as exc:  # never fail the pipeline: say why in the profile
            profile.error = _describe(exc)
        RT.writer.put(profile)
        queued += 1
    return queued


def _columns(recording: Any, table: Any) -> list[str]:
    """The table's columns in the loaded package's dlt schema, dlt's own left out."""
    schema = recording.schemas.get(table.schema_name or "")
    found = schema.tables.get(table.name) if schema is not None else None
    return [
        str(name)
        for name, column in ((found or {}).get("columns") or {}).items()
        if column.get("data_type") and not str(name).startswith("_dlt")
    ]


def _profile_table(pipeline: Any, recording: Any, table: Any) -> tuple[Any, bool]:
    """The profile of the table's rows, and whether they are this run's alone."""
    from lakelens.sdk._profile import compute

    columns = _columns(recording, table)
    if not columns:
        raise LookupError(f"dlt's schema has no columns for table {table.name!r}")
    schema = recording.schemas.get(table.schema_name or "")
    known = (schema.tables.get(table.name) or {}).get("columns") or {}
    with pipeline.sql_client() as client:
        selected = ", ".join(client.escape_column_name(c) for c in columns)
        sql = f"SELECT {selected} FROM {client.make_qualified_table_name(table.name)}"
        if "_dlt_load_id" in known and recording.load_ids:
            ids = ", ".join("'" + i.replace("'", "''") + "'" for i in recording.load_ids)
            sql += f" WHERE {client.escape_column_name('_dlt_load_id')} IN ({ids})"
        this_run = "WHERE" in sql
        sql += f" LIMIT {READ_ROWS}"
        data: Any = None
        if importlib.util.find_spec("pyarrow") is not None:
            try:
                with client.execute_query(sql) as cursor:
                    data = cursor.arrow()
            except Exception:  # a driver dlt's arrow reader does not know (duckdb 2): rows
                data = None
        if data is None:
            with client.execute_query(sql) as cursor:
                data = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    return compute(data), this_run


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:1000]
