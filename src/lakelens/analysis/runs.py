"""Run lookup: full ids or unique prefixes, and the latest run of an asset."""

from __future__ import annotations

import sqlalchemy as sa

from lakelens.errors import LakelensError
from lakelens.store import schema

__all__ = ["UnknownRunError", "latest_run_of_asset", "resolve_run_id"]


class UnknownRunError(LakelensError):
    """No run, or more than one, matches the given id or prefix."""


def resolve_run_id(conn: sa.Connection, text: str) -> str:
    """The run id `text` names, exactly or as a unique prefix."""
    runs = schema.runs
    if conn.execute(sa.select(runs.c.run_id).where(runs.c.run_id == text)).first():
        return text
    prefix = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    matches = list(
        conn.execute(
            sa.select(runs.c.run_id)
            .where(runs.c.run_id.like(prefix + "%", escape="\\"))
            .order_by(runs.c.run_id)
            .limit(6)
        ).scalars()
    )
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UnknownRunError(
            f"No run id starts with {text!r}; `lakelens metrics asset NAME` lists recent runs."
        )
    shown = ", ".join(matches[:5]) + (", …" if len(matches) > 5 else "")
    raise UnknownRunError(f"Run id prefix {text!r} is ambiguous ({shown}); type more characters.")


def latest_run_of_asset(conn: sa.Connection, asset: str) -> str | None:
    """The run id of the asset's most recent materialization."""
    m = schema.materializations
    return conn.execute(
        sa.select(m.c.run_id).where(m.c.asset == asset).order_by(m.c.start_time.desc()).limit(1)
    ).scalar()
