"""Run lookup: full ids or unique prefixes, and the latest run of an asset."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakelens.analysis._db import Reader, borrow
from lakelens.errors import LakelensError

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["UnknownRunError", "latest_run_of_asset", "resolve_run_id", "short_run_id"]


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


def short_run_id(conn: Reader | sa.Connection, run_id: str, *, minimum: int = 8) -> str:
    """The shortest prefix of `run_id` (at least `minimum` characters) that `resolve_run_id`
    takes back to it, for hints such as `lakelens trace PREFIX`; the full id when none is.

    dlt load ids are epoch seconds: loads started within ~100 s share their first 8 characters.
    """
    if len(run_id) <= minimum:
        return run_id
    head = run_id[:minimum]
    escaped = head.replace("/", "//").replace("%", "/%").replace("_", "/_")
    others = [
        other
        for other in borrow(conn).column(
            "SELECT run_id FROM runs WHERE run_id LIKE :prefix ESCAPE '/' AND run_id <> :run_id",
            {"prefix": escaped + "%", "run_id": run_id},
        )
        if other.startswith(head)
    ]
    length = minimum
    for other in others:
        common = next(
            (i for i, (a, b) in enumerate(zip(run_id, other, strict=False)) if a != b),
            min(len(run_id), len(other)),
        )
        length = max(length, common + 1)
    prefix = run_id[:length]
    if length >= len(run_id) or prefix in others:
        return run_id
    return prefix


def latest_run_of_asset(conn: Reader | sa.Connection, asset: str) -> str | None:
    """The run id of the asset's most recent materialization."""
    return borrow(conn).value(
        "SELECT run_id FROM materializations WHERE asset = :asset ORDER BY start_time DESC LIMIT 1",
        {"asset": asset},
    )
