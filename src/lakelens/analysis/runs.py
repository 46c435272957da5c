"""Run lookup: full ids or unique prefixes, and the latest run of an asset."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakelens.analysis._db import Reader, borrow
from lakelens.errors import LakelensError

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["UnknownRunError", "latest_run_of_asset", "resolve_run_id"]


class UnknownRunError(LakelensError):
    """No run, or more than one, matches the given id or prefix."""


def resolve_run_id(conn: Reader | sa.Connection, text: str) -> str:
    """The run id `text` names, exactly or as a unique prefix."""
    db = borrow(conn)
    if db.row("SELECT run_id FROM runs WHERE run_id = :text", {"text": text}):
        return text
    prefix = text.replace("/", "//").replace("%", "/%").replace("_", "/_")
    matches = db.column(
        "SELECT run_id FROM runs WHERE run_id LIKE :prefix ESCAPE '/' ORDER BY run_id LIMIT 6",
        {"prefix": prefix + "%"},
    )
    matches = [m for m in matches if m.startswith(text)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UnknownRunError(
            f"No run id starts with {text!r}; `lakelens metrics asset NAME` lists recent runs."
        )
    shown = ", ".join(matches[:5]) + (", …" if len(matches) > 5 else "")
    raise UnknownRunError(f"Run id prefix {text!r} is ambiguous ({shown}); type more characters.")


def latest_run_of_asset(conn: Reader | sa.Connection, asset: str) -> str | None:
    """The run id of the asset's most recent materialization."""
    return borrow(conn).value(
        "SELECT run_id FROM materializations WHERE asset = :asset ORDER BY start_time DESC LIMIT 1",
        {"asset": asset},
    )
