"""/runs/diff and /runs/partitions on the recorded pipeline (SQLite and PostgreSQL): what they
show, escaping of hostile names, 404/400 pages, and the links that lead to them."""

from __future__ import annotations

import html
import re
from typing import Any

import lakelens
from lakelens.testing import FakeClock, recording

XSS_SPAN = "<script>alert(1)</script>"
XSS_ASSET = "<img src=x onerror=alert(2)>"
XSS_JOB = "<b>job</b>"


def page(response: Any, status: int = 200) -> str:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    return str(response.text)


def attrs(text: str, name: str) -> list[str]:
    return [html.unescape(v) for v in re.findall(rf'{name}="([^"]*)"', text)]


def test_diff_page_leads_with_the_check_that_started_failing(client: Any, pipeline: Any) -> None:
    _, _, info = pipeline
    first, second, _ = info["run_ids"]
    text = page(client.get("/runs/diff", params={"a": first, "b": second}))
    assert attrs(text, "data-run") == [first, second]
    assert f'href="/runs/{first}"' in text and f'href="/runs/{second}"' in text
    failing = text[text.index('id="failing"') : text.index('id="status"')]
    assert 'data-check="dlt_entries · range_check" data-change="newly_failing"' in failing
    assert "480/487 rows valid" in failing
    assert "in both" in text[text.index('id="status"') :]
    # Same rows and schema in both: nothing to show as changed.
    assert 'id="schema"' not in text
    assert sorted(attrs(text, "data-asset")) == [
        "dlt_entries",
        'odd "quoted" \\ name',
        "stg_entries",
    ]
    assert "fetch_from_api" in text and 'data-span="dlt_entries › fetch_from_api' in text


def test_diff_page_of_the_failed_run_shows_status_errors_and_missing_assets(
    client: Any, pipeline: Any
) -> None:
    _, _, info = pipeline
    _, second, failed = info["run_ids"]
    text = page(client.get("/runs/diff", params={"a": second[:10], "b": failed[:10]}))
    status = text[text.index('id="status"') : text.index('id="assets"')]
    assert "s-success" in status and "s-failure" in status and "in both" not in status
    assert 'data-error="B"' in status and "ApiTimeout" in status
    assert "Connection timeout after 30s" in status
    assets = text[text.index('id="assets"') : text.index('id="spans"')]
    assert attrs(assets, "data-asset")[0] == "dlt_entries"  # newly failing first
    assert "not run" in assets  # stg_entries never ran in the failed run
    spans = text[text.index('id="spans"') : text.index('id="checks"')]
    assert 'data-span="stg_entries" data-only="a"' in spans
    assert "errors 0 → 1" in spans


def test_unknown_ambiguous_and_missing_ids_are_error_pages(client: Any, pipeline: Any) -> None:
    settings, store, info = pipeline
    first = info["run_ids"][0]
    with recording(settings=settings, store=store):
        for run_id in ("dup-1", "dup-2"):
            with lakelens.run("dup", run_id=run_id):
                pass
    unknown = page(client.get("/runs/diff", params={"a": "nope-nope", "b": first}), 404)
    assert "No run id starts with &#39;nope-nope&#39;" in unknown
    ambiguous = page(client.get("/runs/diff", params={"a": "dup-", "b": first}), 400)
    assert "ambiguous" in ambiguous and "dup-1" in ambiguous and "dup-2" in ambiguous
    first_run = page(client.get("/runs/diff", params={"b": first}), 404)
    assert "is the first run of job &#39;pipeline&#39;" in first_run
    assert "Two runs needed" in page(client.get("/runs/diff"), 400)
    assert "(3 ticked)" in page(client.get("/runs/diff?run=a&run=b&run=c"), 400)


def test_run_page_links_to_the_comparison_with_the_previous_run(client: Any, pipeline: Any) -> None:
    _, _, info = pipeline
    _, second, failed = info["run_ids"]
    run_page = page(client.get(f"/runs/{failed}"))
    link = re.search(r'id="compare-previous" href="([^"]+)"', run_page)
    assert link is not None
    compared = page(client.get(html.unescape(link.group(1))))
    assert attrs(compared, "data-run") == [second, failed]


def test_runs_page_ticks_two_runs_to_compare_in_time_order(client: Any, pipeline: Any) -> None:
    _, _, info = pipeline
    first, _, failed = info["run_ids"]
    runs = page(client.get("/runs"))
    assert '<form id="compare" method="get" action="/runs/diff">' in runs
    ticks = re.findall(
        r'<input type="checkbox" class="run-pick" name="run" value="([^"]+)" form="compare"', runs
    )
    assert ticks == list(reversed(info["run_ids"]))
    # The newer run ticked first still lands on the right: A is the earlier run.
    compared = page(client.get("/runs/diff", params=[("run", failed), ("run", first)]))
    assert attrs(compared, "data-run") == [first, failed]
    assert 'href="/runs/partitions?job=pipeline"' in page(client.get("/runs?job=pipeline"))


def test_hostile_names_are_escaped_on_both_pages(client: Any, pipeline: Any) -> None:
    settings, store, info = pipeline
    clock = FakeClock(info["now"] - 120)
    ids = []
    with recording(settings=settings, store=store, clock=clock):
        for n in range(2):
            with lakelens.run(XSS_JOB, partition=f"<i>{n}</i>") as run, lakelens.asset(XSS_ASSET):
                ids.append(run.run_id)
                with lakelens.span(XSS_SPAN):
                    clock.advance(0.1 * (n + 1))
                lakelens.schema({"<s>col</s>": "int" if n == 0 else "<u>text</u>"})
                lakelens.check("<em>check</em>", passed=n == 0, message="<marquee>")
                lakelens.record(rows=1 + n)
            clock.advance(10)
    diff = page(client.get("/runs/diff", params={"a": ids[0], "b": ids[1]}))
    grid = page(client.get("/runs/partitions", params={"job": XSS_JOB}))
    jobs = page(client.get("/runs/partitions"))
    for text in (diff, grid, jobs):
        for raw in (
            "<script>",
            "<img src",
            "<b>job",
            "<i>0",
            "<s>col",
            "<u>text",
            "<em>",
            "<marquee>",
        ):
            assert raw not in text, raw
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in diff
    assert "&lt;img src=x onerror=alert(2)&gt;" in diff and "&lt;u&gt;text&lt;/u&gt;" in diff
    assert attrs(grid, "data-partition") == ["<i>0</i>", "<i>1</i>"]
    assert "&lt;b&gt;job&lt;/b&gt;" in jobs


def test_partition_grid_cells_link_to_the_latest_run_of_each(client: Any, pipeline: Any) -> None:
    _, _, info = pipeline
    first, second, failed = info["run_ids"]
    text = page(client.get("/runs/partitions", params={"job": "pipeline"}))
    cells = re.findall(
        r'<a role="listitem" class="pcell o-(\w+)" href="/runs/([^"]+)"[^>]*data-partition="([^"]+)"',
        text,
    )
    assert cells == [("success", first, "p0"), ("success", second, "p1"), ("failure", failed, "p2")]
    legend = dict(re.findall(r'<li data-outcome="(\w+)">.*?<strong>(\d+)</strong>', text))
    assert legend["success"] == "2" and legend["failure"] == "1" and legend["missing"] == "0"
    assert 'data-failed="p2"' in text
    jobs = page(client.get("/runs/partitions"))
    assert 'data-job="pipeline"' in jobs and "3 partitions" in jobs
    assert "Did you mean &#39;pipeline&#39;?" in page(
        client.get("/runs/partitions", params={"job": "pipelin"}), 404
    )


def test_partition_grid_pages_through_many_partitions(client: Any, pipeline: Any) -> None:
    from lakelens.events import Batch
    from lakelens.model import Run, from_epoch

    _, store, info = pipeline
    batch = Batch()
    for day in range(30):
        if day == 12:
            continue  # never ran: a missing cell
        start = info["now"] - (30 - day) * 86400 + 60
        batch.add(
            Run(
                f"daily-{day:02d}",
                "daily",
                status="failure" if day == 20 else "success",
                start_time=from_epoch(start),
                end_time=from_epoch(start + 5),
                partition=f"2024-06-{day + 1:02d}",
            )
        )
    store.write(batch)
    latest = page(client.get("/runs/partitions", params={"job": "daily", "limit": 10}))
    assert attrs(latest, "data-partition") == [f"2024-06-{d:02d}" for d in range(21, 31)]
    assert "every 1d" in latest and "10 of 30" in latest
    earlier = re.search(r'href="([^"]+)">← Earlier partitions', latest)
    assert earlier is not None and "Later partitions" not in latest
    middle = page(client.get(html.unescape(earlier.group(1))))
    assert attrs(middle, "data-partition") == [f"2024-06-{d:02d}" for d in range(11, 21)]
    assert 'data-partition="2024-06-13" data-outcome="missing"' in middle
    assert "Later partitions" in middle
    last_week = page(client.get("/runs/partitions", params={"job": "daily", "since": "7d"}))
    assert attrs(last_week, "data-partition") == [f"2024-06-{d:02d}" for d in range(24, 31)]
