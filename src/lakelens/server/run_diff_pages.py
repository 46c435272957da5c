"""`/runs/diff` (what changed between two runs) and `/runs/partitions` (a partitioned job's
partitions coloured by their latest outcome).

They render analysis/run_diff.py `diff_runs` and analysis/partitions.py `partition_grid`,
the same results as `lakelens runs diff` and `lakelens runs partitions`. The router is
included before the run page's `/runs/{run_id:path}`, which would otherwise take these paths.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from lakelens.server.pages import _page, _PageError, _since

if TYPE_CHECKING:
    import sqlalchemy as sa

    from lakelens.server.context import ServerContext

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

# Cells on one page of the partition grid; `?limit=` asks for up to PARTITIONS_MAX.
PARTITIONS_PAGE = 1000
PARTITIONS_MAX = 5000
SINCE_CHOICES = ("24h", "7d", "30d", "90d")


# -- formatting (how numbers look; the numbers come from analysis/) ------------------------------


def _dur(seconds: float | None) -> str:
    from lakelens.units import format_duration

    return "—" if seconds is None else format_duration(max(0.0, seconds))


def _signed_dur(seconds: float | None) -> str:
    from lakelens.units import format_duration

    if seconds is None:
        return "—"
    if seconds == 0:
        return "same"
    return ("+" if seconds > 0 else "−") + format_duration(abs(seconds))


def _rows(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _bytes(value: float | None) -> str:
    from lakelens.units import format_bytes

    return "—" if value is None else format_bytes(value)


def _moment(value: Any) -> str:
    from lakelens.display import format_moment

    return format_moment(value)


def _helpers() -> dict[str, Any]:
    return {"fmt_dur": _dur, "fmt_rows": _rows, "fmt_bytes": _bytes, "signed_dur": _signed_dur}


# -- /runs/diff -----------------------------------------------------------------------------------


def _diff(
    a: str | None, b: str | None, picked: list[str]
) -> Callable[[sa.Connection, ServerContext], dict[str, Any]]:
    def build(conn: sa.Connection, ctx: ServerContext) -> dict[str, Any]:
        from lakelens.analysis.run_diff import diff_runs
        from lakelens.analysis.runs import AmbiguousRunError, resolve_run_id
        from lakelens.store import reads

        older: str | None = a
        try:
            if picked:
                if len(picked) != 2:
                    raise _PageError(
                        400,
                        "Pick two runs",
                        f"Tick exactly two runs on the Runs page to compare them "
                        f"({len(picked)} ticked).",
                    )
                # Ticked runs compare in time order: the earlier one is A.
                ids = [resolve_run_id(conn, text) for text in picked]
                runs = [reads.runs(conn, run_id=i)[0] for i in ids]
                runs.sort(key=lambda r: (r.start_time is None, r.start_time, r.run_id))
                older, newer = runs[0].run_id, runs[1].run_id
            elif b is not None:
                newer = b
            elif a is not None:
                older, newer = None, a  # one run: against the previous run of its job
            else:
                raise _PageError(
                    400,
                    "Two runs needed",
                    "Give the runs to compare: /runs/diff?a=RUN&b=RUN, or tick two runs on "
                    "the Runs page.",
                )
            result = diff_runs(conn, older, newer)
        except AmbiguousRunError as exc:
            raise _PageError(400, "Ambiguous run id", str(exc)) from None
        return {
            "title": f"Compare runs {result.a.run_id[:12]} → {result.b.run_id[:12]}",
            "d": result,
            "counts": result.counts(),
            "failing": result.checks_by_change("newly_failing", "new_failing"),
            "other_checks": result.checks_by_change(
                "still_failing", "fixed", "removed", "new_passing"
            ),
            "passing": result.checks_by_change("passing"),
            "moment": _moment,
            **_helpers(),
        }

    return build


@router.get("/runs/diff", response_class=HTMLResponse)
def run_diff_page(
    request: Request,
    a: str | None = Query(None, description="The run to compare from (id or unique prefix)."),
    b: str | None = Query(None, description="The run to compare with A."),
    run: list[str] = Query([], description="Two ticked runs (from the Runs page)."),
) -> Response:
    return _page(request, "run_diff.html", "runs", _diff(a or None, b or None, run))


# -- /runs/partitions ----------------------------------------------------------------------------


def _partitions(
    job: str | None, since: str | None, limit: int, page: int
) -> Callable[[sa.Connection, ServerContext], dict[str, Any]]:
    def build(conn: sa.Connection, ctx: ServerContext) -> dict[str, Any]:
        from lakelens.analysis.partitions import (
            OUTCOMES,
            UnknownJobError,
            partition_grid,
            partitioned_jobs,
        )

        base = {
            "job": job,
            "since": since,
            "since_choices": SINCE_CHOICES,
            "outcomes": OUTCOMES,
            "moment": _moment,
        }
        if job is None:
            return {**base, "title": "Partitions", "jobs": partitioned_jobs(conn), "grid": None}
        start = _since(since, ctx.clock(), "since") if since else None
        try:
            grid = partition_grid(conn, job, since=start)
        except UnknownJobError as exc:
            raise _PageError(404, "Not found", str(exc)) from None
        # Page 0 is the latest partitions; each later page goes further back.
        total = len(grid.cells)
        end = max(0, total - page * limit)
        cells = grid.cells[max(0, end - limit) : end]

        def href(to: int) -> str:
            query = {"job": job, "since": since or "", "page": str(to)}
            if limit != PARTITIONS_PAGE:
                query["limit"] = str(limit)
            return "/runs/partitions?" + urlencode({k: v for k, v in query.items() if v})

        return {
            **base,
            "title": f"Partitions of {job}",
            "jobs": None,
            "grid": grid,
            "cells": cells,
            "counts": grid.counts,
            "earlier_href": href(page + 1) if end - limit > 0 else None,
            "later_href": href(page - 1) if page > 0 and end < total else None,
        }

    return build


@router.get("/runs/partitions", response_class=HTMLResponse)
def partitions_page(
    request: Request,
    job: str | None = Query(None),
    since: str | None = Query(None),
    limit: int = Query(PARTITIONS_PAGE, ge=1, le=PARTITIONS_MAX),
    page: int = Query(0, ge=0, le=1_000_000),
) -> Response:
    return _page(
        request, "run_partitions.html", "runs", _partitions(job or None, since or None, limit, page)
    )
