"""`lakelens alerts`: status, destinations, test, history, firing, silence, ack, run."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import typer

from lakelens.cli._common import HomeOption, JsonOption, NoColorOption, TzOption, WatchOption

if TYPE_CHECKING:
    from rich.console import Console

    from lakelens.alerts.service import AlertingService

app = typer.Typer(
    help="Alerts: what fires, where it goes, and whether it arrived.", no_args_is_help=True
)

_SEVERITY_STYLE = {
    "info": "cyan",
    "warning": "yellow",
    "error": "red",
    "critical": "bold white on red",
}


def _service(home: str | None) -> AlertingService:
    from lakelens.alerts.service import AlertingService
    from lakelens.cli._common import open_store

    # Setting up alerting (`alerts test`, `alerts run`) may come before the first pipeline.
    return AlertingService(open_store(home, create=True))


def _ago(moment: float | None) -> str:
    from lakelens.cli._common import age

    return age(None if moment is None else max(0.0, time.time() - moment))


def _when(moment: float | None) -> str:
    """'2026-12-07 14:03:05 CET' in the display zone (--tz), or '-'."""
    from lakelens.display import format_moment

    return format_moment(moment, missing="-")


@app.command()
def status(
    home: str | None = HomeOption, json_output: bool = JsonOption, no_color: bool = NoColorOption
) -> None:
    """Is alerting alive? Destinations, when the evaluator and the delivery worker last ran,
    alerts sent and failed in 24 h, firing now, open incidents, when incidents are told
    (group wait, repeat interval) and the outbox backlog.

    Example: lakelens alerts status
    """
    from rich.markup import escape

    from lakelens.alerts.state import status as read_status
    from lakelens.cli._common import make_console
    from lakelens.cli._output import print_json

    service = _service(home)
    with service.store.connect() as conn:
        data = read_status(conn, now=time.time())
    data.update(
        destinations=sorted(service.config.destinations),
        destination_errors=service.errors,
        route_errors=list(service.config.route_errors),
        group_wait_seconds=service.config.incident_policy.group_wait,
        repeat_interval_seconds=service.config.incident_policy.repeat_interval,
        evaluation_interval_seconds=service.config.evaluation_interval,
    )
    if json_output:
        print_json(data)
        return
    console = make_console(no_color)
    console.print("[bold]Alert System Status[/]\n")
    console.print(f"Configured Destinations: {len(data['destinations'])}")
    for name in data["destinations"]:
        kind = service.config.destinations[name].get("type")
        problem = service.errors.get(name)
        console.print(
            f"  • {escape(name)} [dim]({escape(str(kind))})[/]"
            + (f" [red]✗ {escape(problem)}[/]" if problem else "")
        )
    for problem in data["route_errors"]:
        console.print(f"[red]✗ Route skipped: {escape(problem)}[/]", soft_wrap=True)
    if not data["destinations"]:
        console.print(
            "  [yellow]none — set LAKELENS_ALERT_SLACK_WEBHOOK (or see docs/alerting.md)[/]"
        )
    for component, label in (("evaluator", "Evaluator"), ("worker", "Delivery worker")):
        beat = data["heartbeats"].get(component)
        if beat is None:
            console.print(
                f"{label}: [yellow]never ran[/] — run `lakelens serve` or `lakelens alerts run`"
            )
        else:
            stale = time.time() - beat["last_run"] > 3 * service.config.evaluation_interval + 60
            style = "red" if stale else "green"
            console.print(
                f"{label}: [{style}]last ran {_ago(beat['last_run'])}[/] [dim]({escape(beat['owner'] or '?')})[/]"
            )
    console.print(f"Firing now: {data['firing']} (open incidents: {data['incidents_open']})")
    console.print(f"Recent Alerts Sent (24h): {data['sent_24h']}")
    failed = data["failed_24h"]
    console.print("Failed deliveries (24h): " + (f"[red]{failed}[/]" if failed else "0"))
    console.print(f"Outbox backlog: {data['backlog']}")
    from lakelens.units import format_duration

    policy = service.config.incident_policy
    console.print(
        f"Incidents: told after a {format_duration(policy.group_wait)} group wait, "
        f"reminded every {format_duration(policy.repeat_interval)} while open"
    )


@app.command("list")
def list_(
    home: str | None = HomeOption, json_output: bool = JsonOption, no_color: bool = NoColorOption
) -> None:
    """Configured destinations with their type, the severities routed to them and their status;
    secrets masked.

    Example: lakelens alerts list --json
    """
    from rich.markup import escape
    from rich.table import Table

    from lakelens.cli._common import make_console
    from lakelens.cli._output import print_json

    service = _service(home)
    rows = []
    for name, mapping in service.config.destinations.items():
        severities = [
            s for s in ("info", "warning", "error", "critical") if name in service.config.route(s)
        ]
        destination = service.destinations.get(name)
        described = (
            destination.describe()
            if destination is not None
            else {"name": name, "type": mapping.get("type")}
        )
        rows.append(
            {
                **described,
                "severities": severities,
                "status": "ready" if destination is not None else "error",
                "error": service.errors.get(name),
            }
        )
    if json_output:
        print_json(rows)
        return
    console = make_console(no_color)
    if not rows:
        console.print(
            "No alert destinations configured. Set LAKELENS_ALERT_SLACK_WEBHOOK, …_PAGERDUTY_KEY, "
            "…_EMAIL_SMTP_HOST, …_WEBHOOK_URL or …_ALERTMANAGER_URL, or see docs/alerting.md."
        )
        return
    table = Table(
        title="Configured Alert Destinations", title_justify="left", header_style="bold", box=None
    )
    for column in ("Name", "Type", "Severities", "Target", "Status"):
        table.add_column(column)
    for row in rows:
        target = row.get("url") or row.get("host") or row.get("routing_key") or ""
        status_text = (
            "[green]✓ Ready[/]"
            if row["status"] == "ready"
            else f"[red]✗ {escape(row['error'] or 'error')}[/]"
        )
        table.add_row(
            escape(row["name"]),
            escape(str(row["type"])),
            ", ".join(row["severities"]) or "-",
            escape(str(target)),
            status_text,
        )
    console.print(table)


@app.command()
def test(
    destination: str | None = typer.Option(
        None, "--destination", "-d", help="Only this destination."
    ),
    severity: str = typer.Option(
        "info", "--severity", "-s", help="info, warning, error, critical (or P1–P4)."
    ),
    home: str | None = HomeOption,
    json_output: bool = JsonOption,
    no_color: bool = NoColorOption,
) -> None:
    """Send a clearly labelled test alert through the real delivery path and report, per
    destination, what happened (status code, error).

    Example: lakelens alerts test --destination slack --severity critical
    """
    import uuid

    from rich.markup import escape

    from lakelens.alerts.destinations import AlertMessage
    from lakelens.alerts.engine import queue_notification
    from lakelens.cli._common import make_console
    from lakelens.cli._output import print_json
    from lakelens.errors import LakelensError
    from lakelens.store.engine import is_sqlite
    from lakelens.units import parse_severity

    level = parse_severity(severity, name="--severity")
    service = _service(home)
    names = sorted(service.config.destinations)
    if destination is not None:
        if destination not in service.config.destinations:
            known = ", ".join(names) or "none configured"
            raise LakelensError(f"Unknown destination {destination!r}; configured: {known}.")
        names = [destination]
    if not names:
        raise LakelensError("No alert destinations are configured; see `lakelens alerts list`.")
    now = time.time()
    ids: dict[str, str] = {}
    with service.store.connect() as conn:
        if is_sqlite(conn.engine):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        for name in names:
            message = AlertMessage(
                notification_id=uuid.uuid4().hex,
                fingerprint="test-" + uuid.uuid4().hex[:12],
                action="test",
                rule="test",
                severity=level,
                title="lakelens test alert",
                summary="This is a test alert sent by `lakelens alerts test`. No action is needed.",
                time=now,
                first_seen=now,
            )
            queue_notification(conn, message, name, now)
            ids[message.notification_id] = name
        conn.commit()
    stats = service.worker.run_once()
    outcomes = {nid: result for nid, _dest, result in stats.results if nid in ids}
    report = [
        {
            "destination": name,
            "ok": bool(outcomes.get(nid) and outcomes[nid].ok),
            "status_code": outcomes[nid].status_code if nid in outcomes else None,
            "error": (
                outcomes[nid].error if nid in outcomes else service.errors.get(name) or "not sent"
            ),
        }
        for nid, name in ids.items()
    ]
    service.close()
    if json_output:
        print_json(report)
    else:
        console = make_console(no_color)
        for item in report:
            code = f" (HTTP/SMTP {item['status_code']})" if item["status_code"] else ""
            if item["ok"]:
                console.print(
                    f"[green]✓[/] {escape(str(item['destination']))}: test alert delivered{code}"
                )
            else:
                console.print(
                    f"[red]✗[/] {escape(str(item['destination']))}: {escape(str(item['error']))}{code}"
                )
        if all(item["ok"] for item in report):
            console.print(
                "✓ Test alert sent successfully! Check your configured alert destinations."
            )
    if not all(item["ok"] for item in report):
        raise typer.Exit(1)


@app.command()
def history(
    since: str = typer.Option("24h", "--since", help="30m, 24h, 7d or an ISO time."),
    asset: str | None = typer.Option(None, "--asset", "-a", help="Only alerts of this asset."),
    home: str | None = HomeOption,
    json_output: bool = JsonOption,
    no_color: bool = NoColorOption,
    tz: str | None = TzOption,
) -> None:
    """What alerting did: alerts fired, repeated, resolved, silenced, with deliveries per destination.

    Example: lakelens alerts history --since 7d --asset dlt_glucose_entries
    """
    from rich.markup import escape

    from lakelens.alerts.state import history as read_history
    from lakelens.cli._common import make_console
    from lakelens.cli._output import print_json
    from lakelens.units import parse_since

    start = parse_since(since, now=time.time())
    service = _service(home)
    with service.store.connect() as conn:
        events = read_history(conn, since=start, asset=asset)
    if json_output:
        print_json(events)
        return
    console = make_console(no_color)
    if not events:
        console.print(f"No alert activity since {_when(start)}.")
        return
    for event in events:
        style = _SEVERITY_STYLE.get(event["severity"] or "", "white")
        sent = ", ".join(
            f"{d['destination']} {d['action']}: {d['status']}" for d in event["deliveries"]
        )
        console.print(
            f"[dim]{_when(event['time'])}[/] {event['event']:<12} [{style}]{(event['severity'] or ''):<8}[/] "
            f"{escape(event['summary'] or event['fingerprint'][:12])}"
            + (f" [dim]→ {escape(sent)}[/]" if sent else ""),
            soft_wrap=True,
        )


@app.command()
def firing(
    home: str | None = HomeOption,
    json_output: bool = JsonOption,
    no_color: bool = NoColorOption,
    watch: str | None = WatchOption,
    tz: str | None = TzOption,
) -> None:
    """Alerts firing, acknowledged or silenced now, with occurrences and impact.

    Example: lakelens alerts firing --watch 5
    """
    from dataclasses import asdict

    from rich.markup import escape

    from lakelens.alerts.state import alerts as read_alerts
    from lakelens.cli._common import make_console
    from lakelens.cli._output import print_json
    from lakelens.cli._watch import watch as keep_drawing
    from lakelens.cli._watch import watch_interval

    every = watch_interval(watch, json_output=json_output)
    service = _service(home)

    def read() -> list[Any]:
        with service.store.connect() as conn:
            return list(read_alerts(conn))

    if json_output:
        print_json([asdict(r) for r in read()])
        return

    def draw(console: Console) -> None:
        rows = read()
        if not rows:
            console.print("[green]✓ No alerts firing.[/]")
            return
        for row in rows:
            style = _SEVERITY_STYLE.get(row.severity, "white")
            state = "" if row.status == "firing" else f" [dim]({row.status})[/]"
            child = " [dim](caused upstream)[/]" if row.parent else ""
            console.print(
                f"[{style}]{row.severity.upper():<8}[/] [dim]{row.fingerprint[:12]}[/] {escape(row.summary)}{state}{child}",
                soft_wrap=True,
            )
            console.print(
                f"         [dim]{row.count} occurrence(s), first {_ago(row.first_seen)}, last {_ago(row.last_seen)}[/]"
            )
            impact = row.details.get("impact")
            if impact:
                console.print(
                    f"         [dim]impact: {escape(', '.join(impact))}[/]", soft_wrap=True
                )

    console = make_console(no_color)
    if every is None:
        draw(console)
    else:
        keep_drawing(draw, every, console, title="lakelens alerts firing")


@app.command()
def silence(
    fingerprint: str | None = typer.Argument(
        None, help="Alert fingerprint (a unique prefix is enough)."
    ),
    asset: str | None = typer.Option(
        None, "--asset", "-a", help="Silence every alert of this asset."
    ),
    duration: str = typer.Option("2h", "--for", help="How long: 30m, 2h, 1d."),
    reason: str | None = typer.Option(None, "--reason", help="Why (shown in history)."),
    home: str | None = HomeOption,
    tz: str | None = TzOption,
) -> None:
    """Mute an alert or an asset's alerts for a while (they still update; nothing is sent).

    Example: lakelens alerts silence --asset dlt_glucose_entries --for 2h --reason "API maintenance"
    """
    import getpass

    from lakelens.alerts.state import silence as do_silence
    from lakelens.cli._output import console
    from lakelens.units import parse_duration

    seconds = parse_duration(duration, name="--for")
    service = _service(home)
    do_silence(
        service.store,
        fingerprint=fingerprint,
        asset=asset,
        seconds=seconds,
        reason=reason,
        created_by=getpass.getuser(),
    )
    target = f"asset {asset}" if asset else f"alert {fingerprint}"
    console.print(f"Silenced {target} until {_when(time.time() + seconds)}.")


@app.command()
def unsilence(
    fingerprint: str | None = typer.Argument(
        None, help="Alert fingerprint (a unique prefix is enough)."
    ),
    asset: str | None = typer.Option(None, "--asset", "-a", help="End the silences of this asset."),
    home: str | None = HomeOption,
) -> None:
    """End silences early (all of them when no fingerprint or asset is given).

    Example: lakelens alerts unsilence --asset dlt_glucose_entries
    """
    from lakelens.alerts.state import unsilence as do_unsilence
    from lakelens.cli._output import console

    ended = do_unsilence(_service(home).store, fingerprint=fingerprint, asset=asset)
    console.print(f"Ended {ended} silence(s).")


@app.command()
def ack(
    fingerprint: str = typer.Argument(..., help="Alert fingerprint (a unique prefix is enough)."),
    home: str | None = HomeOption,
) -> None:
    """Acknowledge an alert: no more reminders until it resolves (the resolve is still sent).

    Example: lakelens alerts ack 3f2a9c
    """
    from lakelens.alerts.state import acknowledge
    from lakelens.cli._output import console

    full = acknowledge(_service(home).store, fingerprint)
    console.print(f"Acknowledged alert {full[:12]}.")


@app.command()
def run(
    once: bool = typer.Option(
        False, "--once", help="Evaluate and deliver once, then exit (for cron)."
    ),
    home: str | None = HomeOption,
    json_output: bool = JsonOption,
) -> None:
    """Run the alert evaluator and delivery worker without a server (every 30 s by default;
    LAKELENS_ALERT_EVALUATION_INTERVAL changes it). `--once` suits cron: it tells new
    incidents at once (no group wait) and delivers what the outbox holds.

    Example: lakelens alerts run --once
    """
    import signal
    import threading

    from lakelens.cli._output import console, print_json

    service = _service(home)
    if once:
        cycle = service.run_once(group_wait=0.0)
        data = _cycle_dict(cycle)
        if json_output:
            print_json(data)
        else:
            console.print(
                f"Evaluated: {data['findings']} condition(s), {data['fired']} fired, "
                f"{data['resolved']} resolved; {data['incidents_opened']} incident(s) opened, "
                f"{len(data['messages'])} message(s) queued; delivered {data['delivered']}, "
                f"retrying {data['retried']}, failed {data['failed']}."
            )
        service.close()
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    from lakelens.units import format_duration

    console.print(
        f"Evaluating alerts every {format_duration(service.config.evaluation_interval)}; "
        "Ctrl-C stops."
    )
    try:
        service.run_forever(stop)
    except KeyboardInterrupt:
        stop.set()
    service.close()


@app.command()
def replay(
    since: str = typer.Option("14d", "--since", help="Start: 14d (back from now) or an ISO time."),
    until: str | None = typer.Option(
        None, "--until", help="End: an ISO time or 2h ago (default now)."
    ),
    step: str = typer.Option("5m", "--step", help="How often the simulated evaluator runs."),
    home: str | None = HomeOption,
    json_output: bool = typer.Option(
        False, "--json", help='One JSON object per notification per line, then {"totals": …}.'
    ),
    no_color: bool = NoColorOption,
    tz: str | None = TzOption,
) -> None:
    """Run the rules and the incident policy over recorded history as a live evaluator would
    have, and print every notification it would have sent (nothing is stored or sent).

    Example: lakelens alerts replay --since 14d --step 5m
    """
    import json as _json

    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from lakelens.alerts.config import load_alerting
    from lakelens.alerts.replay import replay as run_replay
    from lakelens.cli._common import make_console, open_store
    from lakelens.cli._output import err_console
    from lakelens.units import parse_duration, parse_since

    now = time.time()
    start = parse_since(since, now=now)
    end = parse_since(until, now=now, name="--until") if until else now
    seconds = parse_duration(step, name="--step")
    store = open_store(home)
    config = load_alerting(store.settings)
    with Progress(
        TextColumn("Replaying"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err_console,
        transient=True,
        disable=json_output or not err_console.is_terminal,
    ) as bar:
        task = bar.add_task("replay", total=None)
        result = run_replay(
            store,
            config,
            since=start,
            until=end,
            step=seconds,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    if json_output:
        for item in result.notifications:
            print(_json.dumps(item.to_dict(), default=str))
        print(_json.dumps({"totals": result.totals()}))
        return
    console = make_console(no_color)
    for item in result.notifications:
        style = _SEVERITY_STYLE.get(item.severity, "white")
        console.print(
            f"[dim]{_when(item.time)}[/] {item.incident:<10} {item.action:<9} "
            f"[{style}]{item.severity.upper():<8}[/] {escape(item.title)}",
            soft_wrap=True,
        )
        if item.action == "opened":
            console.print(
                f"    [dim]assets: {escape(', '.join(item.assets) or '-')}; "
                f"{len(item.findings)} finding(s): {escape('; '.join(item.findings[:3]))}[/]",
                soft_wrap=True,
            )
    totals = result.totals()
    actions = ", ".join(f"{n} {a}" for a, n in totals["by_action"].items()) or "none"
    console.print(
        f"\n{totals['notifications']} notification(s) ({actions}) about {totals['incidents']} "
        f"incident(s) in {totals['evaluations']:,} evaluations from {_when(start)} to {_when(end)}."
    )


maintenance_app = typer.Typer(
    help="Maintenance windows: recurring silences such as 'Sat 00:00-06:00' (UTC).",
    no_args_is_help=True,
)
app.add_typer(maintenance_app, name="maintenance")


@maintenance_app.command("list")
def maintenance_list(
    home: str | None = HomeOption, json_output: bool = JsonOption, no_color: bool = NoColorOption
) -> None:
    """Maintenance windows from lakelens.yaml and the CLI, and whether each is open now.

    Example: lakelens alerts maintenance list --json
    """
    from rich.markup import escape

    from lakelens.alerts.maintenance import stored_windows
    from lakelens.cli._common import make_console
    from lakelens.cli._output import print_json

    service = _service(home)
    now = time.time()
    with service.store.connect() as conn:
        windows = [*service.config.maintenance, *stored_windows(conn)]
    rows = [
        {**w.to_dict(), "source": "cli" if w.id else "lakelens.yaml", "open_now": w.open_at(now)}
        for w in windows
    ]
    if json_output:
        print_json(rows)
        return
    console = make_console(no_color)
    if not rows:
        console.print("No maintenance windows.")
        return
    for row in rows:
        state = "[yellow]open now[/]" if row["open_now"] else "[dim]closed[/]"
        assets = ", ".join(row["assets"]) or "every asset"
        ident = f" [dim]{row['id']}[/]" if row["id"] else " [dim](lakelens.yaml)[/]"
        console.print(
            f"{escape(row['schedule'])}  {escape(row['name'])}{ident}  {state}  [dim]{escape(assets)}[/]"
        )


@maintenance_app.command("add")
def maintenance_add(
    schedule: str = typer.Argument(
        ..., help="'Sat 00:00-06:00', 'Mon-Fri 22:00-02:00', 'daily 02:00-03:00' (UTC)."
    ),
    asset: list[str] = typer.Option(
        [], "--asset", "-a", help="Asset glob (repeatable; none: every asset)."
    ),
    name: str | None = typer.Option(None, "--name", help="A name to show."),
    home: str | None = HomeOption,
    json_output: bool = JsonOption,
) -> None:
    """Add a recurring window in which the findings of the assets it covers are silenced.

    Example: lakelens alerts maintenance add "Sat 00:00-06:00" --asset "raw.*" --name "warehouse upgrade"
    """
    import getpass

    from lakelens.alerts.maintenance import add_window
    from lakelens.cli._output import console, print_json

    window = add_window(
        _service(home).store, schedule, name=name, assets=list(asset), by=getpass.getuser()
    )
    if json_output:
        print_json(window.to_dict())
        return
    console.print(f"Added maintenance window {window.id}: {window.schedule}.")


@maintenance_app.command("remove")
def maintenance_remove(
    window_id: str = typer.Argument(..., help="Window id (a unique prefix is enough)."),
    home: str | None = HomeOption,
) -> None:
    """End a maintenance window added with the CLI (those in lakelens.yaml are edited there).

    Example: lakelens alerts maintenance remove 3f2a9c
    """
    from lakelens.alerts.maintenance import end_window
    from lakelens.cli._output import console

    done = end_window(_service(home).store, window_id)
    console.print(f"Ended maintenance window {done}.")


def _cycle_dict(cycle: Any) -> dict[str, Any]:
    return {
        "findings": cycle.evaluation.findings,
        "fired": len(cycle.evaluation.fired),
        "resolved": len(cycle.evaluation.resolved),
        "incidents_opened": len(cycle.evaluation.opened),
        "messages": [
            {"incident": incident, "kind": kind} for incident, kind in cycle.evaluation.notified
        ],
        "notifications": cycle.evaluation.notifications,
        "delivered": cycle.delivery.delivered,
        "retried": cycle.delivery.retried,
        "failed": cycle.delivery.failed + cycle.delivery.gave_up,
    }
