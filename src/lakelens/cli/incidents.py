"""`lakelens incidents`: list, show, ack, resolve, snooze, note."""

from __future__ import annotations

import getpass
import time
from typing import TYPE_CHECKING, Any

import typer

from lakelens.cli._common import HomeOption, JsonOption, NoColorOption, TzOption, WatchOption

if TYPE_CHECKING:
    from rich.console import Console

app = typer.Typer(
    help="Incidents: one per root cause, what people are told about.", no_args_is_help=True
)

_STYLE = {"info": "cyan", "warning": "yellow", "error": "red", "critical": "bold white on red"}
IdArgument = typer.Argument(..., help="Incident id (a unique prefix is enough).")
ByOption = typer.Option(None, "--by", help="Who (default: your user name).")


def _store(home: str | None) -> Any:
    from lakelens.cli._common import open_store

    return open_store(home)


def _config(store: Any) -> Any:
    from lakelens.alerts.config import load_alerting

    return load_alerting(store.settings)


def _when(moment: float | None) -> str:
    """'2026-12-07 14:03:05 CET' in the display zone (--tz), or '-'."""
    from lakelens.display import format_moment

    return format_moment(moment or None, missing="-")


def _who(by: str | None) -> str:
    return by or getpass.getuser()


@app.command("list")
def list_(
    all_: bool = typer.Option(False, "--all", help="Resolved incidents too."),
    status: str | None = typer.Option(
        None, "--status", help="Only this status: open, acknowledged or resolved."
    ),
    since: str | None = typer.Option(None, "--since", help="Opened since: 2h, 7d, a date."),
    asset: str | None = typer.Option(
        None, "--asset", "-a", help="Only incidents about this asset."
    ),
    limit: int = typer.Option(200, "--limit", "-n", min=1, help="At most N incidents."),
    home: str | None = HomeOption,
    json_output: bool = JsonOption,
    no_color: bool = NoColorOption,
    watch: str | None = WatchOption,
    tz: str | None = TzOption,
) -> None:
    """Incidents, newest first: open and acknowledged ones unless --all or --status.

    Example: lakelens incidents list --all --since 7d
    """
    from rich.markup import escape

    from lakelens.alerts.triage import STATUSES, incidents
    from lakelens.cli._common import make_console
    from lakelens.cli._output import print_json
    from lakelens.cli._watch import watch as keep_drawing
    from lakelens.cli._watch import watch_interval
    from lakelens.units import format_duration, parse_since

    every = watch_interval(watch, json_output=json_output)
    statuses: tuple[str, ...] = STATUSES if all_ else ("open", "acknowledged")
    if status is not None:
        statuses = (status.strip().lower(),)
    if since:
        parse_since(since, now=time.time())  # a bad --since fails before the store is opened
    store = _store(home)

    def read() -> list[Any]:
        # "--since 2h" moves with each redraw of a --watch.
        start = parse_since(since, now=time.time()) if since else None
        with store.connect() as conn:
            return list(incidents(conn, statuses=statuses, since=start, asset=asset, limit=limit))

    if json_output:
        print_json([r.to_dict() for r in read()])
        return

    def draw(console: Console) -> None:
        rows = read()
        if not rows:
            console.print(
                "[green]✓ No open incidents.[/]" if not all_ and status is None else "No incidents."
            )
            return
        now = time.time()
        for row in rows:
            style = _STYLE.get(row.severity, "white")
            state = "" if row.status == "open" else f" [dim]({row.status})[/]"
            console.print(
                f"[{style}]{row.severity.upper():<8}[/] [bold]{row.id}[/] {escape(row.title)}{state}",
                soft_wrap=True,
            )
            end = row.resolved_at or now
            console.print(
                f"         [dim]opened {_when(row.opened_at)}, for {format_duration(end - row.opened_at)}; "
                f"{len(row.findings)} finding(s); assets: {escape(', '.join(row.assets) or '-')}[/]",
                soft_wrap=True,
            )

    console = make_console(no_color)
    if every is None:
        draw(console)
    else:
        keep_drawing(draw, every, console, title="lakelens incidents list")


@app.command()
def show(
    incident_id: str = IdArgument,
    home: str | None = HomeOption,
    json_output: bool = JsonOption,
    no_color: bool = NoColorOption,
    tz: str | None = TzOption,
) -> None:
    """One incident: what broke, its findings, impact, timeline and deliveries.

    Example: lakelens incidents show 3f2a9c
    """
    from rich.markup import escape

    from lakelens.alerts.triage import incident
    from lakelens.cli._common import make_console
    from lakelens.cli._output import print_json

    store = _store(home)
    with store.connect() as conn:
        view = incident(conn, incident_id)
    if json_output:
        print_json(view.to_dict())
        return
    console = make_console(no_color)
    style = _STYLE.get(view.severity, "white")
    console.print(
        f"[{style}]{view.severity.upper()}[/] [bold]{escape(view.title)}[/]  [dim]{view.id}[/]"
    )
    console.print(
        f"Status: {view.status}"
        + (
            f" by {escape(view.acknowledged_by)}"
            if view.acknowledged_by and view.status == "acknowledged"
            else ""
        )
    )
    console.print(escape(view.summary), soft_wrap=True)
    for label, value in (
        ("Root cause", view.root_asset),
        ("Run ID", view.run_id),
        ("Partition", view.partition),
        ("Error", view.error),
        ("Fault at", _when(view.fault_at) if view.fault_at else None),
        ("Opened", _when(view.opened_at)),
        ("Snoozed until", _when(view.snoozed_until) if view.snoozed_until else None),
        (
            "Resolved",
            f"{_when(view.resolved_at)} by {view.resolved_by}" if view.resolved_at else None,
        ),
        ("Impact", ", ".join(view.impact) if view.impact else None),
    ):
        if value:
            console.print(f"{label}: {escape(str(value))}", soft_wrap=True)
    if view.findings:
        console.print("\n[bold]Findings[/]")
        for f in view.findings:
            console.print(
                f"  [{_STYLE.get(f.get('severity') or '', 'white')}]{(f.get('severity') or '').upper():<8}[/] "
                f"{escape(f.get('summary') or '')}",
                soft_wrap=True,
            )
    console.print("\n[bold]Timeline[/]")
    for event in view.timeline:
        who = f" [dim]({escape(event['actor'])})[/]" if event.get("actor") else ""
        text = f" {escape(event['text'])}" if event.get("text") else ""
        console.print(
            f"  [dim]{_when(event['time'])}[/] {event['event']:<12}{text}{who}", soft_wrap=True
        )
    if view.deliveries:
        console.print("\n[bold]Deliveries[/]")
        for d in view.deliveries:
            error = f" [red]{escape(d['last_error'])}[/]" if d.get("last_error") else ""
            console.print(
                f"  [dim]{_when(d['created_at'])}[/] {escape(d['destination'])} {d.get('kind') or d['action']}: "
                f"{d['status']} ({d['attempts']} attempt(s)){error}",
                soft_wrap=True,
            )
    console.print(f"\n[dim]lakelens incidents ack {view.id} · resolve · snooze --for 2h · note[/]")


@app.command()
def ack(
    incident_id: str = IdArgument,
    by: str | None = ByOption,
    home: str | None = HomeOption,
    json_output: bool = JsonOption,
) -> None:
    """Acknowledge: someone is on it. No reminders; PagerDuty is acknowledged; the resolve is
    still sent.

    Example: lakelens incidents ack 3f2a9c
    """
    from lakelens.alerts.triage import acknowledge
    from lakelens.cli._output import console, print_json

    store = _store(home)
    done = acknowledge(store, incident_id, config=_config(store), by=_who(by))
    if json_output:
        print_json({"id": done, "status": "acknowledged"})
        return
    console.print(f"Acknowledged incident {done}.")


@app.command()
def resolve(
    incident_id: str = IdArgument,
    note_text: str | None = typer.Option(None, "--note", help="Why (kept in the timeline)."),
    by: str | None = ByOption,
    home: str | None = HomeOption,
    json_output: bool = JsonOption,
) -> None:
    """Resolve by hand; everyone told hears it. Its findings open nothing new until they
    clear or happen again.

    Example: lakelens incidents resolve 3f2a9c --note "re-ran the load by hand"
    """
    from lakelens.alerts.triage import resolve as do_resolve
    from lakelens.cli._output import console, print_json

    store = _store(home)
    done = do_resolve(store, incident_id, config=_config(store), by=_who(by), text=note_text)
    if json_output:
        print_json({"id": done, "status": "resolved"})
        return
    console.print(f"Resolved incident {done}.")


@app.command()
def snooze(
    incident_id: str = IdArgument,
    duration: str = typer.Option("2h", "--for", help="How long: 30m, 2h, 1d."),
    by: str | None = ByOption,
    home: str | None = HomeOption,
    json_output: bool = JsonOption,
    tz: str | None = TzOption,
) -> None:
    """Send nothing about an incident for a while (its resolve still goes out).

    Example: lakelens incidents snooze 3f2a9c --for 2h
    """
    from lakelens.alerts.triage import snooze as do_snooze
    from lakelens.cli._output import console, print_json
    from lakelens.units import parse_duration

    seconds = parse_duration(duration, name="--for")
    until = time.time() + seconds
    done = do_snooze(_store(home), incident_id, until=until, by=_who(by))
    if json_output:
        print_json({"id": done, "snoozed_until": until})
        return
    console.print(f"Snoozed incident {done} until {_when(until)}.")


@app.command()
def note(
    incident_id: str = IdArgument,
    text: str = typer.Argument(..., help="The note."),
    by: str | None = ByOption,
    home: str | None = HomeOption,
    json_output: bool = JsonOption,
) -> None:
    """Add a note to an incident's timeline.

    Example: lakelens incidents note 3f2a9c "upstream API down, vendor ticket 4411"
    """
    from lakelens.alerts.triage import note as do_note
    from lakelens.cli._output import console, print_json

    done = do_note(_store(home), incident_id, text, by=_who(by))
    if json_output:
        print_json({"id": done, "noted": True})
        return
    console.print(f"Noted on incident {done}.")


@app.command("feedback")
def feedback_(
    incident_id: str = IdArgument,
    false_positive: bool = typer.Option(
        False, "--false-positive", help="Nothing was wrong: the baseline should not have fired."
    ),
    expected: bool = typer.Option(
        False, "--expected", help="It happened, and was expected (a planned backfill, a holiday)."
    ),
    reason: str | None = typer.Option(None, "--reason", help="Why (kept in the timeline)."),
    by: str | None = ByOption,
    home: str | None = HomeOption,
    json_output: bool = JsonOption,
) -> None:
    """Tell lakelens an incident's anomaly was a false positive or expected: its runs leave the
    learned baselines, so they neither fire now nor skew what is expected later.

    Example: lakelens incidents feedback 3f2a9c --expected --reason "Black Friday backfill"
    """
    from lakelens.alerts.triage import feedback
    from lakelens.cli._output import console, print_json
    from lakelens.errors import InvalidArgumentError

    if false_positive == expected:
        raise InvalidArgumentError("Give one of --false-positive or --expected.")
    kind = "false_positive" if false_positive else "expected"
    runs = feedback(_store(home), incident_id, kind=kind, reason=reason, by=_who(by))
    if json_output:
        print_json({"id": incident_id, "feedback": kind, "runs": runs})
        return
    console.print(
        f"Recorded: {kind.replace('_', ' ')}; {runs} run(s) taken out of the baselines. "
        "Its findings clear at the next evaluation."
    )
