"""`lakelens health`: the components of `/health`, checked here or asked of a running server."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any, Optional

import typer

from lakelens.cli._common import HomeOption, JsonOption, NoColorOption
from lakelens.errors import LakelensError

_STYLE = {"healthy": ("✓", "green"), "degraded": ("⚠", "yellow"), "unhealthy": ("✗", "red")}
EXIT_CODES = {"healthy": 0, "degraded": 1, "unhealthy": 2}


class UnreachableError(LakelensError):
    """The server did not answer: for health, that is unhealthy (exit 2), not a usage error."""


def _fetch(url: str, token: str | None) -> dict[str, Any]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url.rstrip("/") + "/health")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        if exc.code != 503:
            detail = ""
            with contextlib.suppress(ValueError, AttributeError):
                detail = json.loads(exc.read()).get("detail", "")
            raise LakelensError(
                f"The server at {url} answered {exc.code}" + (f": {detail}" if detail else ".")
            ) from None
        body = exc.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UnreachableError(
            f"Cannot reach the server at {url} ({reason}); is `lakelens serve` running?"
        ) from None
    try:
        report = json.loads(body)
    except ValueError:
        raise LakelensError(f"The server at {url} did not answer with a health report.") from None
    if not isinstance(report, dict) or "status" not in report:
        raise LakelensError(f"The server at {url} did not answer with a health report.")
    return report


def _summary(name: str, component: dict[str, Any]) -> str:
    details = component.get("details") or {}
    if component.get("error"):
        return str(component["error"])
    if name == "store":
        return (
            f"{details.get('backend')} · {details.get('latency_ms')} ms · revision "
            f"{details.get('revision')}"
            + (f" · {details['problem']}" if "problem" in details else "")
            + (f" · {details['note']}" if "note" in details else "")
            + (
                f" · log search: {search}"
                if (search := details.get("log_search", "")).startswith("scan")
                else ""
            )
            + _upkeep(details.get("upkeep_at"))
        )
    if name in ("disk", "memory"):
        where = f" of {details['path']}" if "path" in details else ""
        return f"{details.get('percent')}% used{where}"
    if name == "freshness":
        breaching = details.get("breaching") or []
        if not breaching:
            return f"{details.get('assets_with_sla', 0)} assets with an SLA, none stale"
        names = ", ".join(b["asset"] for b in breaching[:4])
        return f"{details.get('breaching_count')} past their SLA: {names}"
    if name == "monitors":
        failing = details.get("failing") or []
        overdue = details.get("overdue") or []
        if not failing and not overdue:
            return f"{details.get('monitors', 0)} monitors, all read their warehouse"
        parts = [f"{f['monitor']}: {f['error']}" for f in failing[:2]]
        parts += [f"{n} overdue" for n in overdue[:2]]
        return f"{len(failing)} failing, {len(overdue)} overdue: " + "; ".join(parts)
    text = json.dumps(details, default=str, ensure_ascii=False)
    return text if len(text) <= 100 else text[:99] + "…"


def _upkeep(at: Any) -> str:
    """When this server last ran the partition upkeep (PostgreSQL), as an age."""
    if not isinstance(at, int | float):
        return ""
    minutes = max(0.0, time.time() - at) / 60
    age = "less than a minute" if minutes < 1 else f"{minutes:.0f} min"
    return f" · partition upkeep {age} ago"


def _open_or_fail(store: Any) -> None:
    """A file that is not a lakelens store at all is one line (StoreDamagedError), not a
    table of components that all fail for the same reason."""
    from lakelens.store.damage import StoreDamagedError

    try:
        with store.reader():
            pass
    except StoreDamagedError:
        raise
    except Exception:  # the store component reports it
        pass


def health(
    url: Optional[str] = typer.Option(  # noqa: UP045
        None,
        "--url",
        help="Ask the server at this URL (default: $LAKELENS_URL); otherwise check here.",
    ),
    home: Optional[str] = HomeOption,  # noqa: UP045
    json_output: bool = JsonOption,
    no_color: bool = NoColorOption,
) -> None:
    """Health of the store, disk, memory, data freshness and your own checks (as /health shows).

    Exit code: 0 healthy, 1 degraded, 2 unhealthy.

    Example: lakelens health --json
    """
    from rich.markup import escape
    from rich.table import Table

    from lakelens.cli._common import make_console
    from lakelens.cli._output import print_json
    from lakelens.config import load_settings

    settings = load_settings(home=home)
    target = url or settings.url
    if target:
        try:
            report = _fetch(target, settings.api_token)
        except UnreachableError as exc:
            from lakelens.cli._output import fail

            fail(str(exc), code=2)
    else:
        from lakelens.server.health import HealthChecker
        from lakelens.store import Store

        store = Store(settings=settings)
        try:
            if store.is_sqlite:
                _open_or_fail(store)
            report = HealthChecker.from_settings(settings, store).check_all()
        finally:
            store.close()
    status = str(report.get("status"))
    if json_output:
        print_json(report)
    else:
        console = make_console(no_color)
        mark, style = _STYLE.get(status, ("?", "white"))
        where = f" ({escape(target)})" if target else ""
        console.print(f"[bold]Health{where}:[/] [bold {style}]{mark} {status}[/]")
        table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        for column in ("Component", "Status", "Details"):
            table.add_column(column)
        for name, component in (report.get("components") or {}).items():
            c_mark, c_style = _STYLE.get(component.get("status"), ("?", "white"))
            label = escape(name) + (
                "" if component.get("critical", True) else " [dim](optional)[/]"
            )
            table.add_row(
                label,
                f"[{c_style}]{c_mark} {component.get('status')}[/]",
                escape(_summary(name, component)),
            )
        console.print(table)
    raise typer.Exit(EXIT_CODES.get(status, 2))
