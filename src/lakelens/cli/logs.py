"""`lakelens logs`: search and tail the structured logs of runs and assets."""

from __future__ import annotations

import json
import sys
from datetime import datetime, tzinfo
from typing import Any, Optional

import typer

from lakelens.cli._common import HomeOption, NoColorOption, TzOption

_LEVEL_STYLE = {10: "dim", 20: "cyan", 30: "yellow", 40: "red", 50: "bold white on red"}


def _json_line(record: Any) -> str:
    from lakelens.analysis.shapes import log_dict

    return json.dumps(log_dict(record), default=str, ensure_ascii=False)


# Attributes already on the line (the error) or lakelens' own bookkeeping.
_SHOWN_ELSEWHERE = frozenset({"error", "error_message", "event", "exc_info", "stack_info"})
FIELDS_WIDTH = 160


def _fields(record: Any, wide: bool) -> str:
    """`rows=1086 endpoint=/api/v1` from the record's attributes, cut unless `wide`."""
    parts = []
    for key, value in record.attributes.items():
        if key in _SHOWN_ELSEWHERE or key.startswith("_"):
            continue
        text = (
            value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
        )
        if isinstance(value, str) and (not text or any(c.isspace() for c in text)):
            text = json.dumps(text, ensure_ascii=False)
        parts.append(f"{key}={text}")
    line = " ".join(parts)
    if not wide and len(line) > FIELDS_WIDTH:
        line = line[: FIELDS_WIDTH - 1] + "…"
    return line


def _text_line(record: Any, zone: tzinfo, now: datetime, wide: bool = False) -> str:
    """One record for people: its time in `zone`, dated unless it is from today there."""
    from rich.markup import escape

    from lakelens.display import format_moment

    stamp = format_moment(record.time, zone, now=now)
    style = _LEVEL_STYLE.get(record.level, "white")
    source = record.asset or record.job or record.logger or "-"
    message = record.message
    error = record.attributes.get("error") or record.attributes.get("error_message")
    if error and str(error) not in message:
        message = f"{message} ({error})"
    fields = _fields(record, wide)
    return (
        f"[dim]\\[{stamp}][/] [{style}]{record.level_name:<7}[/] [bold]{escape(source)}[/]: "
        f"{escape(message)}" + (f"  [dim]{escape(fields)}[/]" if fields else "")
    )


def logs(
    asset: Optional[str] = typer.Option(None, "--asset", "-a", help="Only records of this asset."),  # noqa: UP045
    job: str | None = typer.Option(None, "--job", "-j", help="Only records of runs of this job."),
    run_id: str | None = typer.Option(
        None, "--run-id", "-r", help="Only records of this run (a unique prefix is enough)."
    ),
    correlation_id: str | None = typer.Option(
        None,
        "--correlation-id",
        "-c",
        help="Only records of the runs that carry this correlation id (LOG_CORRELATION_ID, "
        "e.g. a Prefect flow run id).",
    ),
    level: str | None = typer.Option(
        None, "--level", "-l", help="Minimum level: DEBUG, INFO, WARNING, ERROR, CRITICAL."
    ),
    since: str | None = typer.Option(
        None, "--since", help="Start: 30m, 2h, 7d or an ISO time (UTC unless it says otherwise)."
    ),
    until: Optional[str] = typer.Option(None, "--until", help="End: same forms as --since."),  # noqa: UP045
    grep: str | None = typer.Option(
        None,
        "--grep",
        "-g",
        help="Only records whose message or attributes contain TEXT (case-insensitive).",
    ),
    limit: int = typer.Option(
        100, "--limit", "-n", min=1, help="Show the newest N matching records."
    ),
    follow_: bool = typer.Option(
        False,
        "--follow",
        "-f",
        help="Keep printing new records as they are committed (Ctrl-C stops).",
    ),
    json_output: bool = typer.Option(
        False, "--json", help="JSON Lines: one object per record, with all attributes."
    ),
    wide: bool = typer.Option(
        False, "--wide", help="Show every field in full (by default cut at 160 characters)."
    ),
    home: Optional[str] = HomeOption,  # noqa: UP045
    no_color: bool = NoColorOption,
    tz: Optional[str] = TzOption,  # noqa: UP045
) -> None:
    """Search logs by asset, job, run, correlation id, level, time and text; --follow tails them
    live. Times are shown in --tz (default UTC), with the date when not today; --json is UTC.

    Example: lakelens logs --asset dlt_glucose_entries --level ERROR --since 2h
    """
    import time

    from lakelens.analysis.logs import (
        LogFilter,
        correlated_runs,
        follow,
        last_id,
        parse_level,
        reported_run,
        search,
    )
    from lakelens.analysis.runs import UnknownRunError, resolve_run_id
    from lakelens.cli._common import make_console, open_store
    from lakelens.units import parse_since

    now = time.time()
    where = LogFilter(
        job=job,
        min_level=parse_level(level),
        since=parse_since(since, now=now) if since else None,
        until=parse_since(until, now=now, name="--until") if until else None,
        grep=grep,
        correlation_id=correlation_id,
    )
    store = open_store(home, create=follow_)  # --follow may start before the first record
    with store.reader() as db:
        if asset is not None:
            from lakelens.analysis.assets import resolve_asset

            where.asset = resolve_asset(db, asset)
        if run_id is not None:
            try:
                where.run_id = resolve_run_id(db, run_id)
            except UnknownRunError:
                if reported_run(db, run_id):  # known only from OTLP spans or log lines
                    where.run_id = run_id
                elif correlated_runs(db, run_id):
                    # An orchestrator's id (LOG_CORRELATION_ID) is what people have at hand.
                    where.correlation_id = run_id
                else:
                    raise
        # --follow goes on from the newest id; a plain read needs it only to say why it is empty
        # (on PostgreSQL, max(id) is one probe per day partition of logs).
        position = last_id(db) if follow_ else None
        records = search(db, where, limit=limit, up_to_id=position)
        if not records and not json_output and not follow_:
            position = last_id(db)
    from lakelens.display import display_zone

    # JSON Lines never goes through rich (its import is 20-50 ms of a command's start-up).
    console = None if json_output else make_console(no_color)
    zone = display_zone()

    def emit(record: Any) -> None:
        if json_output:
            sys.stdout.write(_json_line(record) + "\n")
            sys.stdout.flush()
        else:
            # "Today" is read per line: a --follow left running past midnight starts dating.
            assert console is not None  # made for every output but JSON Lines
            line = _text_line(record, zone, datetime.now(zone), wide)
            console.print(line, soft_wrap=True)

    for record in records:
        emit(record)
    if not follow_:
        if not records and console is not None:
            if position == 0:
                console.print("No logs recorded yet — try `lakelens demo`.")
            else:
                console.print("No log records match these filters.")
        return
    assert position is not None
    try:
        for record in follow(store.reader, where, after_id=position):
            emit(record)
    except KeyboardInterrupt:
        pass
