"""The web dashboard under `/`: server-rendered pages over the same analysis as the API and CLI.

Each route parses its input, calls `analysis/`, and renders a Jinja2 template (autoescape on);
charts are SVG from `charts.py`. Pages carry a Content-Security-Policy without inline
scripts or styles: behaviour lives in /static/lakelens.js, looks in /static/lakelens.css.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from lakelens._version import __version__
from lakelens.server import charts
from lakelens.server.security import clean, masked
from lakelens.server.viewer import View, choices, current_zone, remember, view_of, viewing
from lakelens.units import SEVERITIES

if TYPE_CHECKING:
    import jinja2
    import sqlalchemy as sa

    from lakelens.server.context import ServerContext

__all__ = ["CSP", "router"]

log = logging.getLogger("lakelens.server")
T = TypeVar("T")
router = APIRouter(include_in_schema=False)

HERE = Path(__file__).parent
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
PERIODS = ("1h", "24h", "7d")
REFRESH_DEFAULT = 30
# A run is flagged slow when it took this many times the asset's average, and this much longer
# (the alert rule's floor too: a 1 ms run after 0.5 ms ones is not news).
SLOW_FACTOR = 1.5
SLOW_MIN_SECONDS = 1.0
# Asset rows on the overview by default (failing and stale first); `?assets=N` shows more.
OVERVIEW_ASSETS = 100
# Past this many rows, ask for less (5,000 rows of 20 runs each once took 6.6 s).
OVERVIEW_ASSETS_MAX = 1000
# Open incidents listed on the overview (most severe first); /incidents lists them all.
OVERVIEW_INCIDENTS = 8
LEVEL_CHOICES = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_STATIC = {"lakelens.css": "text/css", "lakelens.js": "text/javascript"}


# -- formatting (only how numbers look; never which numbers) -------------------------------------


def _dur(seconds: float | None) -> str:
    """Every duration a page shows: '850ms', '5.2s', '45s', '2.3m', '1.5h' (units.format_duration)."""
    from lakelens.units import format_duration

    return "—" if seconds is None else format_duration(max(0.0, seconds))


def _pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}f}%"


def _count(value: float | None) -> str:
    from lakelens.units import format_count

    return "—" if value is None else format_count(value)


def _bytes(value: float | None) -> str:
    from lakelens.units import format_bytes

    return "—" if value is None else format_bytes(value)


# Moments as people read them, in the page's display zone (server/viewer.py) with its label.


def _when(moment: float | datetime | None) -> str:
    """'2026-12-07 14:03:05 CET' (the zone's abbreviation; 'UTC' by default)."""
    from lakelens.display import format_moment

    return format_moment(moment, current_zone())


def _clock(moment: float | datetime | None) -> str:
    """'14:03:05', in the display zone (the page says which)."""
    from lakelens.display import format_clock

    return format_clock(moment, current_zone())


def _short(moment: float | None) -> str:
    if moment is None:
        return ""
    return (
        datetime.fromtimestamp(moment, tz=timezone.utc)
        .astimezone(current_zone())
        .strftime("%b %d %H:%M")
    )


def _iso(moment: float | datetime | None) -> str:
    """The machine-readable moment, always UTC: '2026-12-07T13:03:05Z' (<time datetime>)."""
    if moment is None:
        return ""
    if isinstance(moment, (int, float)):
        moment = datetime.fromtimestamp(moment, tz=timezone.utc)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        dur=_dur,
        # `ms` and `utc` are the old names of `dur` and `when`, kept for templates that use them.
        ms=_dur,
        pct=_pct,
        count=_count,
        bytes=_bytes,
        when=_when,
        utc=_when,
        iso=_iso,
        clock=_clock,
        asset_url=charts.asset_url,
        q=lambda text: quote(str(text), safe=""),
        masked=masked,
    )
    env.globals.update(version=__version__, urlencode=urlencode)
    return env


# -- plumbing: access, errors, headers, timing ---------------------------------------------------


class _PageError(Exception):
    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


def _ctx(request: Request) -> ServerContext:
    return request.app.state.ctx


def _view(request: Request) -> View:
    """The zone this request's page shows times in (server/viewer.py)."""
    return view_of(request, _ctx(request).zone)


def _html(
    request: Request, template: str, context: dict[str, Any], *, status: int = 200
) -> HTMLResponse:
    view = _view(request)
    with viewing(view):
        body = (
            _environment()
            .get_template(template)
            .render(
                request_path=request.url.path,
                nav=context.pop("nav", ""),
                bare=context.pop("bare", False),
                account=_account(request),
                view=view,
                tz_choices=choices(view, _ctx(request).zone),
                # The footer's zone picker sends the page's other parameters along.
                tz_keep=[(k, v) for k, v in request.query_params.multi_items() if k != "tz"],
                **context,
            )
        )
    response = HTMLResponse(body, status_code=status, headers=_HEADERS)
    remember(response, view)
    return response


def _account(request: Request) -> dict[str, Any] | None:
    """The header's sign-out button (in a session) or sign-in link (none yet), else None."""
    from lakelens.server.security import grant_of, signin_url
    from lakelens.server.sessions import form_purpose

    ctx = _ctx(request)
    if not ctx.access.enabled:
        return None
    grant = grant_of(request)
    if grant is None:
        return {"name": None, "csrf": "", "signin": signin_url(request)}
    if grant.session is None:  # a bearer token (a proxy adds it): no session to end
        return None
    csrf = ctx.access.forms.issue(form_purpose("signout", grant))
    return {"name": grant.name, "csrf": csrf, "signin": None}


def _page(
    request: Request,
    template: str,
    nav: str,
    build: Callable[[sa.Connection, ServerContext], dict[str, Any]],
) -> Response:
    """Check access, build the context from one connection, render; errors become HTML pages."""
    import sqlalchemy as sa

    from lakelens.analysis.assets import UnknownAssetError
    from lakelens.analysis.runs import UnknownRunError
    from lakelens.errors import LakelensError, StoreError
    from lakelens.server.security import grant_of

    ctx = _ctx(request)
    began = time.perf_counter()
    grant = grant_of(request)
    if not ctx.access.permits(grant, "read"):
        return refused(request, grant, "read")
    try:
        with ctx.store.connect() as conn, viewing(_view(request)):
            context = build(conn, ctx)
    except _PageError as exc:
        return _error_page(request, exc)
    except (UnknownAssetError, UnknownRunError) as exc:
        return _error_page(request, _PageError(404, "Not found", str(exc)))
    except (StoreError, sa.exc.OperationalError) as exc:
        log.error("store unavailable: %s", clean(str(exc).splitlines()[0] if str(exc) else exc))
        return _error_page(
            request,
            _PageError(
                503, "Store unavailable", "The store is not reachable right now; retry later."
            ),
        )
    except LakelensError as exc:
        return _error_page(request, _PageError(400, "Invalid request", str(exc)))
    context["nav"] = nav
    response = _html(request, template, context, status=context.pop("http_status", 200))
    response.headers["Server-Timing"] = f"render;dur={(time.perf_counter() - began) * 1000:.1f}"
    return response


def refused(request: Request, grant: Any, scope: str) -> Response:
    """A page this request may not see or do: a valid token without `scope` gets a 403; with
    no token, a browser goes to the sign-in form (and comes back), an API client gets a 401
    JSON, anything else a 401 page linking to the form."""
    from fastapi.responses import JSONResponse, RedirectResponse

    from lakelens.server.security import browsing, lacks, signin_url, wants_json

    if grant is not None:
        if wants_json(request):
            return JSONResponse({"detail": lacks(scope)}, status_code=403)
        again = "Sign out and sign in with" if grant.session else "Use"
        return _error_page(
            request,
            _PageError(
                403,
                "Scope needed",
                f"{lacks(scope)} {again} a token that has it "
                f"(`lakelens token create --scope {scope}` makes one).",
            ),
        )
    if browsing(request) and scope == "read":
        return RedirectResponse(signin_url(request), status_code=303)
    detail = (
        "Missing or wrong bearer token: send 'Authorization: Bearer <token>', or sign in at "
        "/signin."
    )
    if wants_json(request):
        return JSONResponse(
            {"detail": detail},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="lakelens"'},
        )
    return _error_page(
        request,
        _PageError(
            401,
            "Sign-in needed",
            "This server needs a token: sign in with one, or start it with "
            "LAKELENS_PUBLIC_READ=1 to open the dashboard on a trusted network.",
        ),
        signin=signin_url(request) if request.method in ("GET", "HEAD") else "/signin",
    )


def _error_page(request: Request, error: _PageError, *, signin: str | None = None) -> HTMLResponse:
    return _html(
        request,
        "error.html",
        {
            "status": error.status,
            "title": error.title,
            "message": error.message,
            "signin": signin,
            "nav": "",
        },
        status=error.status,
    )


def _since(text: str, now: float, name: str) -> float:
    from lakelens.units import parse_since

    return parse_since(text, now=now, name=name)


# -- static files ---------------------------------------------------------------------------------


@router.get("/static/{filename}")
def static(filename: str) -> Response:
    """The dashboard's one stylesheet and one script (nothing else is served from disk)."""
    media = _STATIC.get(filename)
    if media is None:
        return Response("Not found", status_code=404, media_type="text/plain")
    return FileResponse(
        HERE / "static" / filename,
        media_type=media,
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/favicon.ico")
def favicon() -> Response:
    return Response(status_code=204)


# -- overview -------------------------------------------------------------------------------------


def _store_size(ctx: ServerContext) -> int | None:
    import sqlalchemy as sa

    store = ctx.store
    if store.is_sqlite:
        database = sa.engine.make_url(store.url).database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return sum(
            os.path.getsize(database + suffix)
            for suffix in ("", "-wal", "-shm")
            if os.path.exists(database + suffix)
        )
    with store.connect() as conn:
        size = conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar()
    return None if size is None else int(size)


def _resources(ctx: ServerContext) -> dict[str, Any]:
    from lakelens.server.health import check_disk, check_memory

    disk_status, disk = check_disk(ctx.settings, ctx.store)
    memory_status, memory = check_memory()
    return {
        "disk": {"status": disk_status, **disk},
        "memory": {"status": memory_status, **memory},
        "store_bytes": _store_size(ctx),
        "backend": "SQLite" if ctx.store.is_sqlite else "PostgreSQL",
    }


def _freshness(node: Any) -> dict[str, Any] | None:
    """How an asset's age compares with its SLA (None when it has no SLA or never succeeded)."""
    if node.freshness_seconds is None or node.age_seconds is None:
        return None
    return {
        "name": node.name,
        "age": node.age_seconds,
        "sla": node.freshness_seconds,
        "ratio": node.age_seconds / node.freshness_seconds if node.freshness_seconds else 0.0,
        "stale": bool(node.stale),
    }


def _attention(node: Any) -> int:
    """0 for a failing asset, 1 for a stale one, 2 for the rest (the overview's row order)."""
    if node.status == "failure":
        return 0
    return 1 if node.stale else 2


def _slow(last: float | None, average: float | None) -> str | None:
    """'2.3m vs 45s avg' when the last run was meaningfully slower than the average: both
    SLOW_FACTOR times and SLOW_MIN_SECONDS longer (1 ms vs 1 ms is noise, not news)."""
    if last is None or not average or last <= SLOW_FACTOR * average:
        return None
    if last - average < SLOW_MIN_SECONDS:
        return None
    return f"{_dur(last)} vs {_dur(average)} avg"


@contextmanager
def _beside(ctx: ServerContext, read: Callable[[], T]) -> Iterator[Callable[[], T]]:
    """`read()` on another connection of the store while the block reads on its own; the
    block gets a function that waits for the result (or raises its error).

    The overview's platform summary and its asset figures are independent reads of 0.1-0.4 s
    each on a big store: a PostgreSQL server works on both at once (big store, load 5:
    `/` 376 -> 314 ms, `/?period=7d` 647 -> 600 ms). SQLite runs its queries in this
    process, where two threads only contend for the CPU (both pages 30-70 ms slower):
    read in turn.
    """
    if ctx.store.is_sqlite:
        yield read
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lakelens-page") as pool:
        future = pool.submit(read)
        yield future.result


def _overview(
    period: str, refresh: int, limit: int = OVERVIEW_ASSETS
) -> Callable[[sa.Connection, ServerContext], dict[str, Any]]:
    def build(conn: sa.Connection, ctx: ServerContext) -> dict[str, Any]:
        from lakelens.alerts.triage import incidents
        from lakelens.analysis.summary import status_of, summary

        now = ctx.clock()
        since = _since(period, now, "period")
        with _beside(ctx, lambda: summary(ctx.store, since=since)) as summarised:
            table = _asset_table(conn, ctx, period, since, now, limit)
            active = incidents(conn)
        result = summarised()
        status, reasons = status_of(result)
        # Most severe first, then newest (the list is newest first; sorted() keeps that order).
        active = sorted(active, key=lambda i: -SEVERITIES.get(i.severity, 0))
        return {
            "title": "Operations overview",
            "period": period,
            "periods": PERIODS,
            "refresh": refresh,
            "summary": result,
            "status": status,
            "reasons": reasons,
            **table,
            "incidents": active[:OVERVIEW_INCIDENTS],
            "incidents_total": len(active),
            "resources": _resources(ctx),
            "now": now,
        }

    return build


def _asset_table(
    conn: sa.Connection, ctx: ServerContext, period: str, since: float, now: float, limit: int
) -> dict[str, Any]:
    """The overview's asset rows and checks, and the freshness over every asset."""
    from lakelens.analysis.asset_period import period_figures
    from lakelens.analysis.lineage import annotate, at_risk

    graph = ctx.graph(conn)
    annotate(conn, graph, list(graph.nodes), now=now)
    layers = charts.dag_layers(graph)
    rows = []
    checks: list[tuple[str, Any]] = []
    # Failing assets first, then stale ones, then the rest, each in lineage order; on a big
    # platform the table stops at `limit` rows.
    ordered = sorted(
        graph.nodes,
        key=lambda n: (_attention(graph.nodes[n]), layers.get(n, 0), n),
    )
    shown = ordered[:limit]
    risks = at_risk(graph)
    # Every shown asset's runs of the period, aggregated by the database in one go.
    figures = period_figures(conn, shown, since=since, until=now)
    for name in shown:
        node = graph.nodes[name]
        metrics = figures.get(name)  # None: no run and no check in the period
        rows.append(
            {
                "node": node,
                "at_risk": charts.name_list(risks[name]) if name in risks else None,
                "metrics": metrics,
                "fresh": _freshness(node),
                "slow": None
                if metrics is None
                else _slow(metrics.last_duration, metrics.avg_duration),
                "spark": charts.sparkline(
                    metrics.duration_trend,
                    metrics.failure_trend,
                    label=f"Longest runs of {name} over the last {period} ({metrics.runs} runs)",
                )
                if metrics is not None and metrics.runs
                else None,
            }
        )
        if metrics is not None:
            checks.extend((name, check) for check in metrics.checks)
    checks.sort(key=lambda item: (item[1].pass_rate, item[0], item[1].name))
    freshness = [f for f in (_freshness(graph.nodes[n]) for n in graph.nodes) if f]
    return {
        "worst": max(freshness, key=lambda f: (f["ratio"], f["name"]), default=None),
        "stale_count": sum(1 for f in freshness if f["stale"]),
        "assets": rows,
        "assets_total": len(ordered),
        "checks": checks,
    }


@router.get("/", response_class=HTMLResponse)
def overview(
    request: Request,
    period: str = Query("24h"),
    refresh: int = Query(REFRESH_DEFAULT, ge=0, le=3600),
    assets: int = Query(
        OVERVIEW_ASSETS, ge=1, description="How many asset rows to show (at most 1,000)."
    ),
) -> Response:
    shown = min(assets, OVERVIEW_ASSETS_MAX)
    return _page(request, "overview.html", "overview", _overview(period, refresh, shown))


# -- logs -----------------------------------------------------------------------------------------


def _level_class(level: str) -> str:
    return level.lower() if level in LEVEL_CHOICES else "info"


def _logs(
    params: dict[str, str | None], limit: int
) -> Callable[[sa.Connection, ServerContext], dict[str, Any]]:
    def build(conn: sa.Connection, ctx: ServerContext) -> dict[str, Any]:
        from lakelens.analysis.assets import UnknownAssetError, asset_names
        from lakelens.analysis.logs import last_id, search
        from lakelens.analysis.runs import UnknownRunError
        from lakelens.errors import LakelensError
        from lakelens.server.api import log_filter

        problem = None
        where = None
        records = []
        newest = last_id(conn)
        try:
            where = log_filter(
                conn,
                now=ctx.clock(),
                asset=params["asset"],
                job=None,
                run_id=params["run_id"],
                level=params["level"],
                since=params["since"],
                until=None,
                q=params["q"],
            )
            records = list(reversed(search(conn, where, limit=limit, up_to_id=newest)))
        except (UnknownAssetError, UnknownRunError, LakelensError) as exc:
            problem = str(exc)
        stream = {k: v for k, v in params.items() if v and k in ("asset", "run_id", "level", "q")}
        if where is not None and where.asset:
            stream["asset"] = where.asset
        if where is not None and where.run_id:
            stream["run_id"] = where.run_id
        return {
            "title": "Logs",
            "params": params,
            "records": records,
            "problem": problem,
            "levels": LEVEL_CHOICES,
            "level_class": _level_class,
            "asset_names": asset_names(conn),
            "stream_query": urlencode({**stream, "after": newest}),
            "limit": limit,
            "http_status": 404 if problem and "nknown" in problem else 400 if problem else 200,
        }

    return build


@router.get("/logs", response_class=HTMLResponse)
def logs_page(
    request: Request,
    asset: str | None = Query(None),
    run_id: str | None = Query(None),
    level: str | None = Query(None),
    since: str | None = Query(None),
    q: str | None = Query(None),
    limit: int = Query(200, ge=1, le=2000),
) -> Response:
    params = {
        "asset": asset or None,
        "run_id": run_id or None,
        "level": level or None,
        "since": since or None,
        "q": q or None,
    }
    response = _page(request, "logs.html", "logs", _logs(params, limit))
    return response


# -- runs -----------------------------------------------------------------------------------------


def _run(run_id: str) -> Callable[[sa.Connection, ServerContext], dict[str, Any]]:
    def build(conn: sa.Connection, ctx: ServerContext) -> dict[str, Any]:
        from lakelens.analysis.logs import LogFilter, correlated_runs, search
        from lakelens.analysis.run_context import run_context
        from lakelens.analysis.runs import last_records, log_only, resolve_run_id
        from lakelens.analysis.trace import load_trace
        from lakelens.store import reads

        # Links carry the full id: read the run at once; a prefix is resolved first.
        found = reads.runs(conn, run_id=run_id)
        full = run_id if found else resolve_run_id(conn, run_id)
        run = found[0] if found else reads.runs(conn, run_id=full)[0]
        # Known only from log records: no end can be reported; say when the latest arrived.
        last_record = last_records(conn, [full]).get(full) if log_only(run) else None
        trace = load_trace(conn, full, run=run)
        spans = [
            {"index": i, "node": node, "span": node.span} for i, node in enumerate(trace.walk())
        ]
        return {
            "title": f"Run {full[:12]}",
            "run": run,
            "last_record": last_record,
            "context": run_context(run),
            "materializations": reads.materializations(conn, run_id=full),
            "checks": reads.check_results(conn, run_id=full),
            "trace": trace,
            "spans": spans,
            "waterfall": charts.waterfall_svg(trace),
            "logs": search(conn, LogFilter(run_id=full), limit=1000, run=run),
            # Other runs with the same correlation id (an orchestrator's id, e.g. Prefect's).
            "correlated": [
                other for other in correlated_runs(conn, run.correlation_id) if other != full
            ]
            if run.correlation_id and run.correlation_id != full
            else [],
            "level_class": _level_class,
        }

    return build


# `:path`: run ids may hold "/" (dbt, OpenLineage producers); links send it as %2F.
@router.get("/runs/{run_id:path}", response_class=HTMLResponse)
def run_page(request: Request, run_id: str) -> Response:
    return _page(request, "run.html", "runs", _run(run_id))


# -- alerts ---------------------------------------------------------------------------------------


def _alerts(conn: sa.Connection, ctx: ServerContext) -> dict[str, Any]:
    import sqlalchemy as sa

    from lakelens.alerts.state import alerts, history, status
    from lakelens.store import schema

    now = ctx.clock()
    s = schema.silences
    silences = [
        dict(row)
        for row in conn.execute(
            sa.select(s)
            .where(sa.or_(s.c.ends_at > now - 7 * 86400, s.c.ended_at > now - 7 * 86400))
            .order_by(s.c.starts_at.desc())
            .limit(100)
        ).mappings()
    ]
    for silence in silences:
        silence["active"] = (
            silence["ended_at"] is None and silence["starts_at"] <= now < silence["ends_at"]
        )
    return {
        "title": "Alerts",
        "firing": alerts(conn),
        "history": history(conn, since=now - 7 * 86400, limit=200),
        "silences": silences,
        "counts": status(conn, now=now),
        "now": now,
    }


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(request: Request) -> Response:
    return _page(request, "alerts.html", "alerts", _alerts)
