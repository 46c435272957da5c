"""The pieces every lakelens dashboard is built of: panels (stat, time series, table), their
queries, the layout grid, the `$asset` and `$datasource` variables and the dashboard itself."""

from __future__ import annotations

from typing import Any

SCHEMA_VERSION = 39
DS = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"
ASSET = 'asset_name=~"$asset"'


class _Layout:
    """Panels left to right, 24 grid columns wide, wrapping into rows."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = self.y = self.row_height = 0

    def add(self, panel: dict[str, Any], w: int, h: int) -> None:
        if self.x + w > 24:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        panel["id"] = len(self.panels) + 1
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.panels.append(panel)
        self.x += w
        self.row_height = max(self.row_height, h)

    def row(self, title: str) -> None:
        if self.x:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        self.add({"type": "row", "title": title, "collapsed": False, "panels": []}, 24, 1)
        self.x, self.y, self.row_height = 0, self.y + 1, 0


def _targets(queries: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return [
        {"refId": chr(ord("A") + i), "datasource": DS, "expr": expr, "legendFormat": legend}
        for i, (expr, legend) in enumerate(queries)
    ]


def _panel(
    kind: str,
    title: str,
    queries: list[tuple[str, str]],
    *,
    unit: str = "short",
    description: str = "",
    thresholds: list[tuple[float | None, str]] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    options: dict[str, Any] | None = None,
    instant: bool = False,
) -> dict[str, Any]:
    steps = [{"color": c, "value": v} for v, c in (thresholds or [(None, "green")])]
    defaults: dict[str, Any] = {
        "unit": unit,
        "thresholds": {"mode": "absolute", "steps": steps},
        "color": {"mode": "thresholds" if kind in ("stat", "table") else "palette-classic"},
    }
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    targets = _targets(queries)
    if instant:
        for target in targets:
            target.update(instant=True, range=False, format="table")
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options or {},
    }


def _stat(title: str, expr: str, **kwargs: Any) -> dict[str, Any]:
    options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
    return _panel("stat", title, [(expr, "")], options=options, **kwargs)


def _series(title: str, queries: list[tuple[str, str]], **kwargs: Any) -> dict[str, Any]:
    options = {
        "legend": {"displayMode": "list", "placement": "bottom"},
        "tooltip": {"mode": "multi"},
    }
    return _panel("timeseries", title, queries, options=options, **kwargs)


def _table(title: str, queries: list[tuple[str, str]], **kwargs: Any) -> dict[str, Any]:
    panel = _panel("table", title, queries, instant=True, **kwargs)
    panel["transformations"] = [
        {"id": "merge", "options": {}},
        {
            "id": "organize",
            "options": {"excludeByName": {"Time": True, "job": True, "instance": True}},
        },
    ]
    return panel


def _variables(*, asset: bool) -> list[dict[str, Any]]:
    variables: list[dict[str, Any]] = [
        {
            "name": "datasource",
            "label": "Prometheus",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "hide": 0,
            "refresh": 1,
        }
    ]
    if asset:
        query = "label_values(asset_executions_total, asset_name)"
        variables.append(
            {
                "name": "asset",
                "label": "Asset",
                "type": "query",
                "datasource": DS,
                "definition": query,
                "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
                "refresh": 2,
                "includeAll": True,
                "allValue": ".*",
                "multi": True,
                "sort": 1,
                "current": {},
                "hide": 0,
            }
        )
    return variables


def _dashboard(
    uid: str, title: str, description: str, layout: _Layout, *, asset: bool
) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["lakelens"],
        "timezone": "utc",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "1m",
        "time": {"from": "now-24h", "to": "now"},
        "templating": {"list": _variables(asset=asset)},
        "annotations": {"list": []},
        "links": [
            {
                "title": "lakelens dashboards",
                "type": "dashboards",
                "tags": ["lakelens"],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "panels": layout.panels,
    }


def _quantiles(selector: str, by: str = "") -> list[tuple[str, str]]:
    group = f"le, {by}" if by else "le"
    legend = "p{q} {{asset_name}}" if by else "p{q}"
    return [
        (
            f"histogram_quantile({q / 100:g}, sum by ({group}) "
            f"(rate(asset_execution_seconds_bucket{{{selector}}}[{RATE}])))",
            legend.format(q=q),
        )
        for q in (50, 95, 99)
    ]
