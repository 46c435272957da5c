"""`lakelens export`: configuration for the Prometheus / Alertmanager / Grafana stack."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from lakelens.cli._common import HomeOption

if TYPE_CHECKING:
    from lakelens.store import Store

app = typer.Typer(
    help="Generate Prometheus alert rules and Grafana dashboards for lakelens' metrics.",
    no_args_is_help=True,
)


@app.callback()
def _group() -> None:
    """Generate Prometheus alert rules and Grafana dashboards for lakelens' metrics."""


def _existing_store(home: Optional[str]) -> Store | None:  # noqa: UP045
    """The store named by --home / LAKELENS_*, or None when there is no store there yet."""
    from lakelens.config import load_settings
    from lakelens.store import Store

    settings = load_settings(home=home)
    if not settings.database_url and not (settings.home / "lakelens.db").exists():
        return None
    return Store(settings=settings)


def _write(output: Path | None, text: str) -> None:
    import sys

    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        from lakelens.errors import LakelensError

        raise LakelensError(
            f"Cannot write {output}: {exc.strerror}; choose another --output path."
        ) from None


@app.command("prometheus-rules")
def prometheus_rules(
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write to this file instead of stdout."
    ),
    job: str = typer.Option(
        "lakelens", "--job", help="The Prometheus job name that scrapes lakelens."
    ),
    for_: str | None = typer.Option(
        None,
        "--for",
        help="Use this `for:` duration in every rule (e.g. 10s for a test stack).",
    ),
    home: Optional[str] = HomeOption,  # noqa: UP045
) -> None:
    """Prometheus alerting rules: freshness SLAs (per asset, from the store), validation pass
    rate, error rate, lakelens down, alert delivery failing, evaluator stalled.

    Example: lakelens export prometheus-rules -o deploy/prometheus/rules/lakelens.yml
    """
    from lakelens.cli._output import err_console
    from lakelens.export.prom_rules import RuleOptions, rules_for_store
    from lakelens.units import parse_duration

    options = RuleOptions(job=job)
    if for_ is not None:
        options = options.with_for(
            0.0 if for_.strip() in ("0", "0s") else parse_duration(for_, name="--for")
        )
    store = _existing_store(home)
    try:
        text = rules_for_store(store, options)
    finally:
        if store is not None:
            store.close()
    _write(output, text)
    if output is not None:
        where = store.location if store is not None else "no store (generic freshness rule only)"
        err_console.print(f"Wrote Prometheus rules to {output} ({where}).")


@app.command()
def grafana(
    output: Path = typer.Option(
        Path("grafana"), "--output", "-o", help="Directory to write into (created if missing)."
    ),
    prometheus_url: str = typer.Option(
        "http://prometheus:9090", "--prometheus-url", help="Prometheus as Grafana reaches it."
    ),
    loki_url: str = typer.Option(
        "http://loki:3100", "--loki-url", help="Loki as Grafana reaches it."
    ),
    alertmanager_url: str = typer.Option(
        "http://alertmanager:9093", "--alertmanager-url", help="Alertmanager as Grafana reaches it."
    ),
    dashboards_path: str = typer.Option(
        "/etc/grafana/dashboards/lakelens",
        "--dashboards-path",
        help="Where the dashboards/ directory is mounted inside the Grafana container.",
    ),
    job: str = typer.Option(
        "lakelens", "--job", help="The Prometheus job name that scrapes lakelens."
    ),
) -> None:
    """Grafana dashboards (Pipeline overview, Asset health, Data quality, Self-monitoring)
    plus datasource and dashboard provisioning files.

    Writes OUTPUT/dashboards/*.json and OUTPUT/provisioning/{datasources,dashboards}/lakelens.yml.

    Example: lakelens export grafana -o deploy/grafana
    """
    from lakelens.cli._output import err_console
    from lakelens.errors import LakelensError
    from lakelens.export.grafana import GrafanaOptions, write_grafana

    options = GrafanaOptions(
        prometheus_url=prometheus_url,
        loki_url=loki_url,
        alertmanager_url=alertmanager_url,
        dashboards_path=dashboards_path,
        job=job,
    )
    try:
        written = write_grafana(output, options)
    except OSError as exc:
        raise LakelensError(
            f"Cannot write under {output}: {exc.strerror}; choose another --output directory."
        ) from None
    dashboards = sum(1 for path in written if path.suffix == ".json")
    err_console.print(
        f"Wrote {dashboards} dashboards and {len(written) - dashboards} provisioning files "
        f"to {output}."
    )
