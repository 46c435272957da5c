"""Downstream usage (issue 15): reads from OpenLineage inputs and the SDK's deps, views reported
through the SDK and the API, rates per day over a window, and where people see them (the
asset page, `metrics asset`, `lineage impact`, the API). On SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.transport.http import HttpConfig, HttpTransport
from typer.testing import CliRunner

import lakelens
from _support import load_module
from lakelens.analysis.usage import asset_usage, usage_at_stake
from lakelens.cli.main import app
from lakelens.config import load_settings
from lakelens.errors import InvalidArgumentError
from lakelens.store import Store
from lakelens.testing import FakeClock

DAY = 86400.0
# 02:00 UTC: the nightly runs below start at this time of day.
T0 = datetime(2024, 10, 15, 2, 0, tzinfo=timezone.utc).timestamp()
HOSTILE = "<script>alert('usage')</script>"
MARKUP = "[red]Superset[/red] & co"


# The real `lakelens serve` the OpenLineage tests use.
_ingest = load_module(
    "lakelens_tests_ingest_conftest", Path(__file__).parents[1] / "ingest/conftest.py"
)


def _rows(store: Store, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    with store.reader() as db:
        return db.rows(sql, params)


# -- reads by the SDK's runs, on a fake clock -------------------------------------------------


def test_a_run_reads_each_dep_once_and_reads_per_day_follow_the_window(
    recorder: tuple[Store, FakeClock],
) -> None:
    store, clock = recorder
    lakelens.asset("raw", kind="table").declare()
    mart = lakelens.asset("mart", deps=["raw"])
    agg = lakelens.asset("agg", deps=["raw", "mart"])
    report = lakelens.asset("report", deps=["raw"])
    for day in range(10):
        clock.set(T0 + day * DAY)
        with lakelens.run("nightly"):
            with mart:
                pass
            for _partition in range(3):  # three materializations, one read of each dep
                with agg:
                    pass
        if day >= 7:  # a job that started reading two days before `now`
            clock.advance(600)
            with lakelens.run("adhoc"), report:
                pass
    lakelens.flush()
    assert _rows(
        store, "SELECT count(*) FROM asset_usage WHERE asset = 'raw' AND reader = 'nightly'"
    ) == [(10,)]
    assert _rows(store, "SELECT count(*) FROM asset_usage WHERE asset = 'mart'") == [(10,)]

    now = T0 + 9 * DAY + 3600
    with store.reader() as db:
        raw = asset_usage(db, "raw", now=now)
        three_days = asset_usage(db, "raw", now=now, days=3)
        mart_usage = asset_usage(db, "mart", now=now)
    readers = {r.name: r for r in raw.readers}
    # The window (now - 7 days, now] holds the nightly reads of days 3 to 9; the one of day 2,
    # at 02:00, is an hour before it. Nightly read before the window too: 7 reads / 7 days.
    assert (readers["nightly"].count, readers["nightly"].per_day) == (7, 1.0)
    assert readers["nightly"].kind == "job" and readers["nightly"].via is None
    assert readers["nightly"].last == T0 + 9 * DAY
    # adhoc is new: 3 reads over the 3 days since its first (2 days and 50 minutes ago).
    assert (readers["adhoc"].count, readers["adhoc"].per_day) == (3, 1.0)
    assert (raw.jobs, raw.dashboards, raw.reads_per_day) == (2, 0, 2.0)
    assert raw.summary == "2 jobs read this: 2 reads/day"
    by_day = {d.day: (d.reads, d.views) for d in raw.daily}
    assert by_day[T0 - 2 * 3600 + 2 * DAY] == (0, 0)  # 02:00 of day 2 is outside the window
    assert [by_day[T0 - 2 * 3600 + d * DAY] for d in range(3, 10)] == [(1, 0)] * 4 + [(2, 0)] * 3
    assert [(r.name, r.count, r.per_day) for r in three_days.readers] == [
        ("adhoc", 3, 1.0),
        ("nightly", 3, 1.0),
    ]
    assert [(r.name, r.per_day) for r in mart_usage.readers] == [("nightly", 1.0)]
    assert mart_usage.summary == "1 job reads this: 1 read/day"


def test_views_of_a_dashboard_count_for_what_it_reads_and_once_at_stake(
    recorder: tuple[Store, FakeClock],
) -> None:
    store, clock = recorder
    with lakelens.asset("mart"):
        pass
    lakelens.asset("glucose_dashboard", kind="dashboard", deps=["mart"]).declare()
    for day in range(7):
        clock.set(T0 + day * DAY + 10 * 3600)
        lakelens.usage("glucose_dashboard", views=450)
        lakelens.usage("mart", views=20, reader="Superset: Glucose Monitoring")
    clock.advance(1800)
    lakelens.usage("mart", reads=5, reader="nightly_export")
    with lakelens.run("exporter"):
        lakelens.usage("mart", reads=2)
        lakelens.usage("mart", reads=2)  # the same run: counted once
    lakelens.flush()
    now = clock() + 1800
    with store.reader() as db:
        mart = asset_usage(db, "mart", now=now)
        dashboard = asset_usage(db, "glucose_dashboard", now=now)
        stake = usage_at_stake(db, ["mart", "glucose_dashboard"], now=now)
    assert [(r.name, r.kind, r.count, r.per_day, r.via) for r in mart.readers] == [
        ("glucose_dashboard", "dashboard", 3150, 450.0, "glucose_dashboard"),
        ("Superset: Glucose Monitoring", "dashboard", 140, 20.0, None),
        ("nightly_export", "job", 5, 5.0, None),
        ("exporter", "job", 2, 2.0, None),
    ]
    assert mart.summary == "2 jobs and 2 dashboards read this: 7 reads/day, 470 views/day"
    assert [(r.name, r.via) for r in dashboard.readers] == [("glucose_dashboard", None)]
    assert sum(d.views for d in mart.daily) == 7 * 470
    # Together, the dashboard's views are counted once.
    assert (stake.jobs, stake.dashboards, stake.reads_per_day, stake.views_per_day) == (
        2,
        2,
        7.0,
        470.0,
    )
    assert stake.summary == "2 jobs and 2 dashboards, 7 reads/day, 470 views/day"
    assert [a.name for a in stake.ranked] == ["glucose_dashboard", "mart"]
    kinds = dict(_rows(store, "SELECT name, kind FROM assets"))
    assert kinds["glucose_dashboard"] == "dashboard"


def test_usage_arguments_are_checked_before_anything_is_written(
    recorder: tuple[Store, FakeClock],
) -> None:
    store, _clock = recorder
    for call, message in [
        (lambda: lakelens.usage("mart"), "needs views=N"),
        (lambda: lakelens.usage("mart", views=3, reads=1), "one of the two"),
        (lambda: lakelens.usage("mart", views=0), "expected 1 to"),
        (lambda: lakelens.usage("mart", views=True), "whole number"),
        (lambda: lakelens.usage("mart", reads=1), "reader='job name' outside a run"),
        (lambda: lakelens.usage("", views=1), "asset"),
        (lambda: lakelens.usage("mart", views=1, time="yesterday"), "epoch seconds"),
    ]:
        with pytest.raises(InvalidArgumentError, match=message):
            call()
    lakelens.flush()
    assert _rows(store, "SELECT count(*) FROM asset_usage") == [(0,)]


# -- OpenLineage through the real client and a real `lakelens serve` --------------------------


def _ol_event(
    state: RunState,
    run_id: str,
    job: str,
    inputs: Sequence[tuple[str, str]],
    outputs: Sequence[tuple[str, str]] = (),
    *,
    ago: float = 600,
) -> RunEvent:
    moment = datetime.now(timezone.utc) - timedelta(seconds=ago)
    return RunEvent(
        eventType=state,
        eventTime=moment.isoformat(),
        run=Run(runId=run_id),
        job=Job(namespace="shop", name=job),
        inputs=[InputDataset(ns, name) for ns, name in inputs],
        outputs=[OutputDataset(ns, name) for ns, name in outputs],
        producer="https://example.com/lakelens-tests",
    )


@pytest.fixture
def served(tmp_path: Path, store_url: str) -> Iterator[Any]:
    server = _ingest.Serve(tmp_path, store_url, None)
    try:
        yield server
    finally:
        server.stop()


def test_openlineage_inputs_are_read_once_per_run_under_the_assets_own_name(
    served: Any, store_url: str, tmp_path: Path
) -> None:
    client = OpenLineageClient(transport=HttpTransport(HttpConfig(url=served.url, timeout=10)))
    wh = "postgres://wh:5432"
    build, backfill, rewrite = (str(uuid.uuid4()) for _ in range(3))
    # Before anything says that shop.orders is the asset `orders`.
    client.emit(_ol_event(RunState.START, build, "build_revenue", [(wh, "shop.orders")], ago=900))
    # Declared through the SDK on the same store: its dbt relation makes shop.orders an alias.
    settings = load_settings(home=str(tmp_path / "sdk"), database_url=store_url, log_format="none")
    store = Store(settings=settings)
    lakelens.configure(settings=settings, store=store)
    try:
        lakelens.asset(
            "orders", kind="table", tags={"dbt.relation": "warehouse.shop.orders"}
        ).declare()
        lakelens.flush()
        for state in (RunState.RUNNING, RunState.COMPLETE):
            client.emit(
                _ol_event(
                    state,
                    build,
                    "build_revenue",
                    [("pg://other", "warehouse.shop.orders"), (wh, "shop.customers")],
                    [(wh, "shop.revenue")],
                    ago=300,
                )
            )
        client.emit(_ol_event(RunState.COMPLETE, backfill, "build_revenue", [(wh, "shop.orders")]))
        # A job that reads what it rewrites does not read it downstream.
        client.emit(
            _ol_event(
                RunState.COMPLETE, rewrite, "dedupe", [(wh, "shop.orders")], [(wh, "shop.orders")]
            )
        )
        client.close()

        assert _rows(
            store,
            "SELECT reader, run_id, source FROM asset_usage WHERE asset = 'orders' ORDER BY time",
        ) == [
            ("shop/build_revenue", build, "openlineage"),
            ("shop/build_revenue", backfill, "openlineage"),
        ]
        usage = served.get("/api/v1/assets/orders/usage")
        assert [(r["name"], r["kind"], r["count"]) for r in usage["readers"]] == [
            ("shop/build_revenue", "job", 2)
        ]
        assert usage["summary"] == "1 job reads this: 2 reads/day"
        customers = served.get(f"/api/v1/assets/{quote(wh + '/shop.customers', safe='')}/usage")
        assert [(r["name"], r["count"]) for r in customers["readers"]] == [
            ("shop/build_revenue", 1)
        ]

        # The SDK sending to the server (LAKELENS_URL): views arrive as native events.
        remote = load_settings(home=str(tmp_path / "remote"), url=served.url, log_format="none")
        lakelens.configure(settings=remote)
        lakelens.usage("orders", views=12, reader="Superset: Orders")
        assert lakelens.flush(20)
        usage = served.get("/api/v1/assets/orders/usage", days=1)
        assert [(r["name"], r["kind"], r["count"]) for r in usage["readers"]] == [
            ("Superset: Orders", "dashboard", 12),
            ("shop/build_revenue", "job", 2),
        ]
        assert _rows(store, "SELECT source FROM asset_usage WHERE kind = 'view'") == [("sdk",)]
    finally:
        lakelens.flush()
        lakelens.configure(settings=load_settings(home=str(tmp_path / "after"), log_format="none"))
        store.close()


# -- the API, the asset page and the CLI ------------------------------------------------------

INGEST = "llk_usage-ingest-only-0123456789abcdefghijklmn"
READ = "llk_usage-read-only-0123456789abcdefghijklmnop"


@pytest.fixture
def secured(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, Store, float]]:
    """(TestClient, store, now): raw → mart → report and dashboard, a nightly job reading raw
    and mart, on a token-protected app."""
    from fastapi.testclient import TestClient

    from lakelens.server import create_app

    config = tmp_path / "lakelens.yaml"
    lines = ["server:", "  tokens:"]
    for name, token, scopes in (("bi", INGEST, "ingest"), ("viewer", READ, "read")):
        lines += [
            f"    - name: {name}",
            f"      hash: sha256:{hashlib.sha256(token.encode()).hexdigest()}",
            f"      scopes: [{scopes}]",
        ]
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setenv("LAKELENS_DATABASE_URL", store_url)
    monkeypatch.setenv("LAKELENS_CONFIG", str(config))
    settings = load_settings(home=str(tmp_path / "home"), log_format="none")
    store = Store(settings=settings)
    now = time.time()
    # Nightly, two days running, the next run due ten minutes from now.
    clock = FakeClock(now - 2 * DAY + 600)
    lakelens.configure(settings=settings, store=store, clock=clock)
    try:
        lakelens.asset("raw", kind="table").declare()
        mart = lakelens.asset("mart", deps=["raw"])
        report = lakelens.asset("report", deps=["mart"])
        lakelens.asset("dashboard", kind="dashboard", deps=["mart"]).declare()
        for _ in range(2):
            with lakelens.run("nightly"):
                with mart:
                    pass
                with report:
                    pass
            clock.advance(DAY)
        lakelens.flush()
        with TestClient(create_app(settings, store, clock=time.time)) as client:
            yield client, store, now
    finally:
        lakelens.configure(settings=load_settings(home=str(tmp_path / "after"), log_format="none"))
        store.close()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_views_posted_to_the_api_need_the_ingest_scope_and_are_checked(
    secured: tuple[Any, Store, float],
) -> None:
    client, store, now = secured
    view = {"asset": "mart", "views": 450, "reader": HOSTILE, "time": now - 3600}
    refused = client.post("/api/v1/usage", json=view, headers=_bearer(READ))
    assert refused.status_code == 403 and "'ingest' scope" in refused.json()["detail"]
    assert client.post("/api/v1/usage", json=view).status_code == 401
    answer = client.post(
        "/api/v1/usage",
        json=[
            view,
            {"asset": "mart", "views": 30, "reader": MARKUP, "time": now - 7200},
            {"asset": "mart", "views": -1, "reader": "x"},
            {"asset": "mart", "views": 3, "reads": 2, "reader": "x"},
            {"asset": "mart"},
            {"asset": "mart", "reads": 4},
            "a view",
        ],
        headers=_bearer(INGEST),
    )
    assert answer.status_code == 207, answer.text
    assert answer.json()["accepted"] == 2
    reasons = {r["index"]: r["reason"] for r in answer.json()["rejected"]}
    assert "out of range" in reasons[2]
    assert "not both" in reasons[3]
    assert "give views" in reasons[4]
    assert "reader: name the job" in reasons[5]
    assert "expected an event object" in reasons[6]
    assert _rows(
        store, "SELECT source, count FROM asset_usage WHERE kind = 'view' ORDER BY count"
    ) == [
        ("api", 30),
        ("api", 450),
    ]
    bad = client.post("/api/v1/usage", content=b"[1,", headers=_bearer(INGEST))
    assert bad.status_code == 400 and "Malformed JSON" in bad.json()["detail"]
    number = client.post("/api/v1/usage", json=5, headers=_bearer(INGEST))
    assert number.status_code == 400 and "got int" in number.json()["detail"]

    usage = client.get("/api/v1/assets/mart/usage", headers=_bearer(READ)).json()
    assert [(r["name"], r["kind"], r["count"], r["per_day"]) for r in usage["readers"]] == [
        (HOSTILE, "dashboard", 450, 450.0),
        (MARKUP, "dashboard", 30, 30.0),
        ("nightly", "job", 2, 1.0),
    ]
    assert usage["summary"] == "1 job and 2 dashboards read this: 1 read/day, 480 views/day"
    assert client.get("/api/v1/assets/nope/usage", headers=_bearer(READ)).status_code == 404
    asset = client.get("/api/v1/assets/mart", headers=_bearer(READ)).json()
    assert asset["usage"]["readers"] == usage["readers"]

    page = client.get("/assets/mart", headers=_bearer(READ)).text
    section = page[page.index('id="downstream-usage"') :]
    assert "Downstream usage" in section
    assert "&lt;script&gt;alert(&#39;usage&#39;)&lt;/script&gt;" in section
    assert "<script>alert" not in page
    assert "1 job and 2 dashboards read this: 1 read/day, 480 views/day" in section
    assert "450 views/day" in section and "1 read/day" in section
    # The upstream asset's page: the job reads it, the dashboard reads what it feeds.
    raw_page = client.get("/assets/raw", headers=_bearer(READ)).text
    assert "1 job reads this: 1 read/day" in raw_page


def test_metrics_asset_and_lineage_impact_show_the_same_usage_as_the_api(
    secured: tuple[Any, Store, float],
) -> None:
    client, _store, now = secured
    views = [
        {"asset": "dashboard", "views": 450, "time": now - 3600},
        {"asset": "mart", "views": 30, "reader": MARKUP, "time": now - 3600},
    ]
    assert client.post("/api/v1/usage", json=views, headers=_bearer(INGEST)).status_code == 200
    runner = CliRunner()

    def cli(*args: str) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    text = cli("metrics", "asset", "mart", "--no-color")
    block = text[text.index("Downstream usage") :]
    assert "1 job and 2 dashboards read this: 1 read/day, 480 views/day" in block
    assert "├─ dashboard (dashboard) → 450 views/day" in block
    assert f"├─ {MARKUP} (dashboard) → 30 views/day" in block  # markup shown, not applied
    assert "└─ nightly (job) → 1 read/day" in block
    as_json = json.loads(cli("metrics", "asset", "mart", "--json"))
    api = client.get("/api/v1/assets/mart/usage", headers=_bearer(READ)).json()
    assert as_json["usage"]["readers"] == api["readers"]
    assert as_json["usage"]["summary"] == api["summary"]

    impact = cli("lineage", "impact", "raw", "--no-color")
    assert "At stake: 1 job and 2 dashboards, 2 reads/day, 480 views/day" in impact
    assert "· dashboard → 450 views/day" in impact
    impact_json = json.loads(cli("lineage", "impact", "raw", "--json"))
    api_impact = client.get("/api/v1/lineage/raw/impact", headers=_bearer(READ)).json()
    assert impact_json == api_impact
    assert api_impact["usage"]["summary"] == "1 job and 2 dashboards, 2 reads/day, 480 views/day"
    # The impact answer is cached per graph; the use at stake is not.
    more = {"asset": "dashboard", "views": 50, "time": now - 60}
    assert client.post("/api/v1/usage", json=more, headers=_bearer(INGEST)).status_code == 200
    again = client.get("/api/v1/lineage/raw/impact", headers=_bearer(READ)).json()
    assert again["usage"]["views_per_day"] == 530.0
    assert {k: v for k, v in again.items() if k != "usage"} == {
        k: v for k, v in api_impact.items() if k != "usage"
    }


def test_metrics_asset_json_is_the_apis_asset_document_with_profile_and_usage(
    secured: tuple[Any, Store, float],
) -> None:
    """`lakelens metrics asset NAME --json` and `GET /api/v1/assets/NAME` are one document:
    metrics, usage, the column profile (latest, changes, history) and lineage neighbours."""
    client, _store, now = secured
    for day in range(3):  # views every day for three days: the same rate at any `now`
        view = {"asset": "dashboard", "views": 450, "time": now - 3600 - day * DAY}
        assert client.post("/api/v1/usage", json=view, headers=_bearer(INGEST)).status_code == 200
    lakelens.profile([{"amount": 10.0, "status": "ok"}] * 3, asset="mart")
    lakelens.profile(
        [{"amount": 10.0, "status": "ok"}, {"amount": None, "status": "late"}], asset="mart"
    )
    lakelens.flush()
    result = CliRunner().invoke(app, ["metrics", "asset", "mart", "--json"])
    assert result.exit_code == 0, result.output
    cli = json.loads(result.output)
    api = client.get("/api/v1/assets/mart", headers=_bearer(READ)).json()
    # Read a moment apart: the age since the last run is the one figure that moves.
    assert cli.pop("age_seconds") == pytest.approx(api.pop("age_seconds"), abs=60)
    assert cli == api
    profile = api["profile"]
    assert profile["latest"]["row_count"] == 2
    assert profile["latest"]["columns"]["amount"]["null_rate"] == 0.5
    assert len(profile["history"]) == 2 and profile["previous_id"] is not None
    assert next(c for c in profile["changes"] if c["column"] == "amount")["null_rate_shift"] == 0.5
    assert api["usage"]["views_per_day"] == 450.0
    assert (api["upstream_assets"], api["downstream_assets"]) == (["raw"], ["dashboard", "report"])


def test_a_merged_name_keeps_one_read_per_run(recorder: tuple[Store, FakeClock]) -> None:
    """A run's reads reported under an alias and under the asset's name are one read."""
    store, clock = recorder
    lakelens.asset("orders", kind="table", tags={"dbt.relation": "db.shop.orders"}).declare()
    lakelens.flush()
    from lakelens.events import Batch
    from lakelens.model import AssetUsage, from_epoch

    for name in ("pg://wh/shop.orders", "orders", "pg://other/db.shop.orders"):
        batch = Batch()
        batch.add(AssetUsage(name, "etl", time=from_epoch(clock()), run_id="r1", source="api"))
        store.write(batch)
    assert _rows(store, "SELECT asset, reader, count FROM asset_usage") == [("orders", "etl", 1)]


# -- rates with known answers: discrete daily reads and a continuous stream of views ------------


def _rate(store: Store, asset: str, reader: str, now: float, days: float = 7.0) -> float:
    with store.reader() as db:
        usage = asset_usage(db, asset, now=now, days=days)
    (found,) = [r for r in usage.readers if r.name == reader]
    return found.per_day


@pytest.mark.parametrize("history", [3, 12], ids=["new-in-window", "read-before-window"])
def test_a_daily_read_is_one_a_day_at_any_hour_of_now(
    recorder: tuple[Store, FakeClock], history: int
) -> None:
    """A job reading once a day shows 1/day, never 0.5 or 2: a day and a bit after its first
    read, a week in, and whatever hour `now` is (even a little after its usual time)."""
    store, _clock = recorder
    for day in range(history):
        lakelens.usage("raw", reads=1, reader="nightly", time=T0 + day * DAY)
    lakelens.flush()
    last = T0 + (history - 1) * DAY
    for after in (60.0, 3600.0, 12 * 3600.0, DAY - 60, DAY + 120):
        assert _rate(store, "raw", "nightly", last + after) == pytest.approx(1.0, abs=0.002)
    assert _rate(store, "raw", "nightly", last + 3600, days=3) == pytest.approx(1.0)


def test_views_streamed_over_a_day_and_a_bit_are_that_many_a_day(
    recorder: tuple[Store, FakeClock],
) -> None:
    """The demo's shape: 450 views over 24 hours plus a few seconds, one report every five
    minutes (busier in daytime), is ~450/day, not 450 / 2 days; one view per report too."""
    store, _clock = recorder
    now = T0 + 3 * DAY
    start = now - DAY - 5
    counts = [2 + i % 2 if 84 <= i < 252 else int(i % 3 == 0) for i in range(288)]
    for i, views in enumerate(counts):
        if views:
            lakelens.usage("board", views=views, time=start + i * 300)
    for i in range(450):
        lakelens.usage("mart", views=1, reader="stream", time=start + i * DAY / 450)
    lakelens.flush()
    total = sum(counts)
    assert 400 <= total <= 500
    assert _rate(store, "board", "board", now) == pytest.approx(total, rel=0.01)
    assert _rate(store, "mart", "stream", now) == pytest.approx(450, rel=0.01)
    # Read back a week later than the window: both left the window, nothing to show.
    with store.reader() as db:
        assert asset_usage(db, "mart", now=now + 8 * DAY).readers == []


def test_rate_edge_cases_with_known_answers(recorder: tuple[Store, FakeClock]) -> None:
    """One single use, uses spread over the whole window, a weekly job, a reader that stopped."""
    store, _clock = recorder
    now = T0 + 20 * DAY
    # One read three days ago: once in three days. One an hour ago: its uses so far, 1.
    lakelens.usage("a", reads=1, reader="once-3d", time=now - 3 * DAY)
    lakelens.usage("a", reads=1, reader="once-1h", time=now - 3600)
    # 450 views reported once, yesterday evening: 450 a day.
    lakelens.usage("a", views=450, reader="yesterday", time=now - 15 * 3600)
    # 70 reads evenly over the whole window: 10 a day.
    for i in range(70):
        lakelens.usage("a", reads=1, reader="spread", time=now - 7 * DAY + 1 + i * DAY / 10)
    # A weekly job, seen at both ends of the window: once a week, not twice.
    for at in (now - 7 * DAY + 60, now - 60):
        lakelens.usage("a", reads=1, reader="weekly", time=at)
    # Read daily for four days, then stopped four days ago: 4 reads stand for 4 days, and
    # the 3 days of silence beyond its usual gap count too: 4 / 7.
    for day in range(4):
        lakelens.usage("a", reads=1, reader="stopped", time=now - 7 * DAY + 600 + day * DAY)
    # A job that read daily long before the window and stopped six days ago: the window holds
    # 2 reads, its read before the window starts their span, silence fills the rest: 2 / 7.
    for day in range(9):
        lakelens.usage("a", reads=1, reader="retired", time=now - 14 * DAY + 600 + day * DAY)
    lakelens.flush()
    rates = {
        name: _rate(store, "a", name, now)
        for name in ("once-3d", "once-1h", "yesterday", "spread", "weekly", "stopped", "retired")
    }
    assert rates["once-3d"] == pytest.approx(1 / 3)
    assert rates["once-1h"] == 1.0
    assert rates["yesterday"] == 450.0
    assert rates["spread"] == pytest.approx(10.0, rel=0.01)
    assert rates["weekly"] == pytest.approx(1 / 7, rel=0.01)
    assert rates["stopped"] == pytest.approx(4 / 7, rel=0.01)
    assert rates["retired"] == pytest.approx(2 / 7, rel=0.01)


def test_usage_at_stake_of_a_big_reach_matches_the_usage_of_its_used_assets(
    recorder: tuple[Store, FakeClock],
) -> None:
    """An impact reaching thousands of assets reads the window once instead of a statement per
    500 names: the same answer, and nothing of assets outside the reach."""
    store, clock = recorder
    clock.set(T0)
    lakelens.usage("mart", views=20, reader="Superset")
    lakelens.usage("stg", reads=3, reader="export")
    lakelens.usage("outside", reads=9, reader="other_job")
    lakelens.flush()
    now = clock() + 3600
    reach = ["mart", "stg", *(f"unused_{i:05d}" for i in range(1_200))]
    with store.reader() as db:
        big = usage_at_stake(db, reach, now=now)
        small = usage_at_stake(db, ["mart", "stg"], now=now)
    assert big.to_dict() == small.to_dict()
    assert [a.name for a in big.ranked] == ["mart", "stg"]
    assert (big.jobs, big.dashboards, big.reads_per_day, big.views_per_day) == (1, 1, 3.0, 20.0)
