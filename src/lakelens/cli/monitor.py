"""`lakelens monitor`: add, list, remove and run warehouse monitors (lakelens.monitors)."""

from __future__ import annotations

import sys
import time
from typing import Any

import typer

from lakelens.cli._common import HomeOption, JsonOption, NoColorOption

app = typer.Typer(
    help="Warehouse monitors: tables watched from their metadata (rows, size, changes, columns).",
    no_args_is_help=True,
)


def _store(home: str | None, *, create: bool = False) -> Any:
    from lakelens.cli._common import open_store

    return open_store(home, create=create)


def _freshness(values: list[str]) -> dict[str, str]:
    """'2h' (every table) or 'orders*=2h' → {glob: duration}."""
    from lakelens.monitors.settings import parse_pairs

    plain = [v for v in values if "=" not in v]
    pairs = parse_pairs([v for v in values if "=" in v], name="--freshness")
    return {**({"*": plain[-1]} if plain else {}), **pairs}


def _profiles(values: list[str]) -> dict[str, list[str]]:
    """['orders=amount,status'] → {'orders': ['amount', 'status']} (a table named twice: both)."""
    from lakelens.errors import InvalidArgumentError
    from lakelens.monitors.settings import parse_columns

    found: dict[str, list[str]] = {}
    for item in values:
        table, sep, columns = item.partition("=")
        if not sep or not table.strip() or not columns.strip():
            raise InvalidArgumentError(
                f"Invalid --profile {item!r}: expected TABLE=COLUMN[,COLUMN…], e.g. "
                "orders=amount,status."
            )
        listed = found.setdefault(table.strip(), [])
        listed += parse_columns(columns, name=f"--profile {item!r}")
    return found


@app.command("add")
def add(
    url: str = typer.Argument(
        ...,
        help="postgresql://user@host/db, duckdb:///path/file.duckdb or any SQLAlchemy URL "
        "(without the password: see --password-env).",
    ),
    name: str | None = typer.Option(None, "--name", help="Monitor name (default: the database)."),
    schema: list[str] = typer.Option(
        [], "--schema", "-s", help="Only this schema (repeat for more; default: all)."
    ),
    tables: list[str] = typer.Option(
        [], "--tables", "-t", help="Only tables matching this glob, e.g. 'orders*' or 'raw.*'."
    ),
    interval: str = typer.Option("10m", "--interval", help="How often to look: 10m, 1h, 90s."),
    timestamp_column: list[str] = typer.Option(
        [],
        "--timestamp-column",
        help="TABLE=COLUMN: the table's last modification is max(COLUMN) (TABLE may be a glob).",
    ),
    freshness: list[str] = typer.Option(
        [],
        "--freshness",
        help="A freshness SLA for the tables' assets: '2h' for all, or 'orders*=2h'.",
    ),
    password_env: str | None = typer.Option(
        None,
        "--password-env",
        help="Environment variable holding the password (never stored; PostgreSQL also reads "
        "PGPASSWORD and ~/.pgpass).",
    ),
    statement_timeout: str = typer.Option(
        "30s", "--statement-timeout", help="Longest a monitor query may run."
    ),
    exact_count_below: str = typer.Option(
        "16MiB",
        "--exact-count-below",
        help="PostgreSQL: count(*) tables up to this size; bigger ones get the estimate.",
    ),
    profile: list[str] = typer.Option(
        [],
        "--profile",
        help="TABLE=COL1,COL2: profile these columns in the warehouse ('*': every column; "
        "TABLE may be a glob). Repeat for more tables.",
    ),
    profile_interval: str = typer.Option(
        "1h",
        "--profile-interval",
        help="Profile a table at most this often, and only once it changed.",
    ),
    profile_sample_above: str = typer.Option(
        "1M",
        "--profile-sample-above",
        help="Profile bigger tables from a sample of about this many rows (PostgreSQL) or "
        "with approximate distinct values and quantiles (DuckDB).",
    ),
    replace: bool = typer.Option(False, "--replace", help="Change an existing monitor."),
    home: str | None = HomeOption,
    json_output: bool = JsonOption,
) -> None:
    """Watch a warehouse's tables: row counts, sizes, modification times and columns, and
    column profiles of the columns you name with --profile.

    Example: lakelens monitor add postgresql://monitor@db/analytics --schema public
    --password-env WAREHOUSE_PASSWORD --timestamp-column orders=updated_at --freshness 2h
    --profile orders=amount,status
    """
    from lakelens.cli._output import console, print_json
    from lakelens.monitors.collectors import require_driver
    from lakelens.monitors.settings import MonitorConfig, parse_pairs
    from lakelens.monitors.state import add_monitor, load_monitors
    from lakelens.units import format_duration

    config = MonitorConfig.create(
        url,
        name=name,
        schemas=schema,
        tables=tables,
        interval=interval,
        timestamp_columns=parse_pairs(timestamp_column, name="--timestamp-column"),
        freshness=_freshness(freshness),
        password_env=password_env,
        statement_timeout=statement_timeout,
        exact_count_max_bytes=exact_count_below,
        profile_columns=_profiles(profile),
        profile_interval=profile_interval,
        profile_sample_above=profile_sample_above,
    )
    require_driver(config)
    store = _store(home, create=True)
    try:
        add_monitor(store.engine, config, now=time.time(), replace=replace)
        with store.connect() as conn:
            (state,) = load_monitors(conn, [config.name])
    finally:
        store.close()
    if json_output:
        print_json(state.summary())
        return
    every = format_duration(config.interval)
    console.print(
        f"{'Updated' if replace else 'Added'} monitor {config.name}: {config.shown_url}, every "
        f"{every}. `lakelens serve` runs it; `lakelens monitor run --once {config.name}` "
        "looks now.",
        markup=False,
        soft_wrap=True,
    )


@app.command("list")
def list_(
    home: str | None = HomeOption,
    json_output: bool = JsonOption,
    no_color: bool = NoColorOption,
) -> None:
    """The monitors, with when each last ran and what failed.

    Example: lakelens monitor list --json
    """
    from rich.markup import escape
    from rich.table import Table

    from lakelens.cli._common import age, make_console
    from lakelens.cli._output import print_json
    from lakelens.monitors.state import load_monitors, sync_config
    from lakelens.units import format_duration

    store = _store(home, create=True)
    try:
        sync_config(store.engine, store.settings)
        with store.connect() as conn:
            monitors = load_monitors(conn)
    finally:
        store.close()
    if json_output:
        print_json([m.summary() for m in monitors])
        return
    console = make_console(no_color)
    if not monitors:
        console.print("No monitors. Add one with `lakelens monitor add URL`.")
        return
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for column in ("Monitor", "URL", "Every", "Last run", "Tables", "Status"):
        table.add_column(column)
    now = time.time()
    for m in monitors:
        if m.last_error:
            status = f"[red]✗ {escape(m.last_error)}[/]"
        elif m.last_run is None:
            status = "[dim]not run yet[/]"
        else:
            status = "[green]✓ ok[/]"
        listed = m.details.get("tables")
        table.add_row(
            escape(m.name) + (" [dim](yaml)[/]" if m.config.source == "config" else ""),
            escape(m.config.shown_url),
            format_duration(m.config.interval),
            age(now - m.last_run) if m.last_run is not None else "never",
            "-" if listed is None else f"{listed:,}",
            status,
        )
    console.print(table)


@app.command("remove")
def remove(
    name: str = typer.Argument(..., help="The monitor to remove."),
    home: str | None = HomeOption,
) -> None:
    """Stop watching a warehouse; what its monitor recorded stays.

    Example: lakelens monitor remove warehouse
    """
    from lakelens.cli._output import console
    from lakelens.monitors.state import remove_monitor

    store = _store(home)
    try:
        remove_monitor(store.engine, name)
    finally:
        store.close()
    console.print(f"Removed monitor {name}.", markup=False)


def _line(result: Any) -> str:
    from lakelens.units import format_duration

    if result.error:
        return f"{result.name}: ✗ {result.error}"
    text = (
        f"{result.name}: {result.tables:,} tables in {format_duration(result.seconds)} — "
        f"{result.changed} changed, {result.schema_changes} schema changes, "
        + (f"{result.profiled} profiled, " if result.profiled else "")
        + f"{len(result.failed)} failed"
    )
    for table, why in sorted(result.failed.items())[:20]:
        text += f"\n  ✗ {table}: {why}"
    if len(result.failed) > 20:
        text += f"\n  … and {len(result.failed) - 20} more"
    for table, why in sorted(result.profile_errors.items())[:20]:
        text += f"\n  ! {table} profile: {why}"
    return text


@app.command("run")
def run(
    names: list[str] = typer.Argument(None, help="Monitors to run (default: all)."),
    once: bool = typer.Option(
        False, "--once", help="Run each monitor once now and exit (for cron); else loop."
    ),
    home: str | None = HomeOption,
    json_output: bool = JsonOption,
) -> None:
    """Poll the monitors' warehouses: once now, or on their schedules until Ctrl-C.

    Exit status with --once: 0 when every table was read, 1 when something failed.
    Example: lakelens monitor run --once warehouse
    """
    import threading

    from lakelens.cli._output import console, err_console, print_json
    from lakelens.monitors.service import MonitorService
    from lakelens.monitors.settings import MonitorError

    store = _store(home, create=True)
    try:
        service = MonitorService(store)
        if names:
            known = {m.name for m in service.monitors()}
            missing = [n for n in names if n not in known]
            if missing:
                raise MonitorError(
                    f"No monitor named {missing[0]!r}"
                    + (f"; known: {', '.join(sorted(known))}." if known else "; none exist.")
                )
        elif not service.monitors():
            raise MonitorError("No monitors to run; add one with `lakelens monitor add URL`.")
        progress = _progress() if sys.stderr.isatty() and not json_output else None

        def report(result: Any) -> None:
            if progress is not None:
                progress.clear()
            if json_output:
                print_json(result.to_dict())
            else:
                console.print(_line(result), markup=False, highlight=False, soft_wrap=True)

        if once:
            results = service.run_due(names or None, force=True, progress=progress)
            if progress is not None:
                progress.clear()
            if json_output:
                print_json([r.to_dict() for r in results])
            else:
                for result in results:
                    report(result)
            if any(not r.ok for r in results):
                raise typer.Exit(1)
            return
        err_console.print("Running monitors on their schedules (Ctrl-C stops).")
        stop = threading.Event()
        try:
            service.run_forever(stop, names=names or None, report=report, progress=progress)
        except KeyboardInterrupt:
            stop.set()
    finally:
        store.close()


class _Progress:
    """'warehouse: 340/1,000 tables' on stderr, rewritten in place, for long cycles."""

    def __init__(self) -> None:
        self.began = time.monotonic()
        self.shown = False

    def __call__(self, name: str, done: int, total: int) -> None:
        # Quiet for the first second: short cycles print only their summary.
        if time.monotonic() - self.began < 1.0 and done < total:
            return
        sys.stderr.write(f"\r{name}: {done:,}/{total:,} tables")
        sys.stderr.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self.shown = False
        self.began = time.monotonic()


def _progress() -> _Progress:
    return _Progress()
