"""Column lineage on the dashboard: the asset page's Columns section, and the lineage page
drawing one column's path (`?column=`), with the API's answers, escaped, on both stores."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote

import pytest

XSS_COLUMN = "<script>alert(1)</script>"
XSS_ASKED = "<img src=x onerror=alert(1)>"
WIDE_COLUMNS = 2000


def _record_column_lineage(store: Any, odd_asset: str) -> None:
    """Column mappings on the pipeline: api → dlt_entries → stg_entries → mart_glucose, a
    sibling dlt_entries → devices that reads another column, and no mapping on
    stg_entries → dashboard / the odd asset (they "may depend")."""
    from lakelens.analysis.column_lineage import COLUMN_LINEAGE_TAG
    from lakelens.events import Batch
    from lakelens.model import Asset, LineageEdge, SchemaSnapshot

    now = datetime.now(timezone.utc)
    store.write(
        Batch(
            assets=[
                Asset("mart_glucose", kind="model", tags={COLUMN_LINEAGE_TAG: "resolved"}),
                Asset("devices", kind="model"),
                Asset(
                    "fct_unparsed",
                    kind="model",
                    tags={
                        COLUMN_LINEAGE_TAG: "unresolved",
                        COLUMN_LINEAGE_TAG + "_reason": "sqlglot could not parse <the SQL>",
                    },
                ),
                Asset("wide_table"),
            ],
            edges=[
                LineageEdge("api", "dlt_entries", "manual", {"sgv": ["sgv"], "device": ["device"]}),
                LineageEdge(
                    "dlt_entries",
                    "stg_entries",
                    "manual",
                    {
                        "glucose_mg_dl": ["sgv"],
                        "glucose_mmol": ["sgv"],
                        "source": ["device"],
                        XSS_COLUMN: ["device"],
                    },
                ),
                LineageEdge(
                    "stg_entries", "mart_glucose", "manual", {"avg_glucose": ["glucose_mg_dl"]}
                ),
                LineageEdge("dlt_entries", "devices", "manual", {"device_id": ["device"]}),
                LineageEdge("devices", "fct_unparsed", "manual"),
            ],
            schemas=[
                SchemaSnapshot(
                    "dlt_entries",
                    [("sgv", "int"), ("device", "text"), ("date_string", "text")],
                    time=now,
                    hash="columns-1",
                ),
                SchemaSnapshot(
                    "wide_table",
                    [(f"c{i:04d}", "int") for i in range(WIDE_COLUMNS)],
                    time=now,
                    hash="wide-1",
                ),
            ],
        )
    )


@pytest.fixture
def client(pipeline: Any, odd_asset: str) -> Iterator[Any]:
    """A TestClient on the pipeline store with column lineage recorded before it starts."""
    from fastapi.testclient import TestClient

    from lakelens.server import create_app

    settings, store, info = pipeline
    _record_column_lineage(store, odd_asset)
    with TestClient(create_app(settings, store, clock=lambda: info["now"])) as test_client:
        yield test_client


def _page(response: Any, status: int = 200) -> str:
    assert response.status_code == status, response.text[-2000:]
    assert response.headers["content-type"].startswith("text/html")
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    text = str(response.text)
    assert "Traceback" not in text
    return text


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def _assert_no_markup_injected(page: str) -> None:
    """Only the page's own script (one, external) and no injected tag or handler."""
    parser = _Tags()
    parser.feed(page)
    assert [t for t, _ in parser.tags if t == "script"] == ["script"]
    for tag, attrs in parser.tags:
        assert tag not in ("img", "iframe", "object", "embed", "style"), tag
        assert not any(name.startswith("on") for name, _ in attrs), (tag, attrs)


def _marks(page: str) -> dict[str, set[str]]:
    """Each drawn node's name → its highlight classes."""
    found = {}
    for classes, name in re.findall(
        r'<a class="node ([^"]*)" href="[^"]*" data-id="[^"]*" '
        r'data-name="([^"]*)"',
        page,
    ):
        found[html.unescape(name)] = set(classes.split()) & {
            "selected",
            "impacted",
            "feeds",
            "maybe",
        }
    return found


def _edges(page: str, kind: str) -> set[tuple[str, str]]:
    """The (up, down) asset names of the drawn edges whose class includes `kind`."""
    names = {
        i: html.unescape(n) for i, n in re.findall(r'data-id="(n\d+)" data-name="([^"]*)"', page)
    }
    return {
        (names[up], names[down])
        for classes, up, down in re.findall(
            r'<path class="edge([^"]*)" d="[^"]*" data-from="(n\d+)" data-to="(n\d+)"', page
        )
        if kind in classes.split()
    }


def _row(page: str, column: str) -> str:
    row = re.search(rf'<tr data-column="{re.escape(column)}">(.*?)</tr>', page, re.S)
    assert row is not None, column
    return row.group(1)


def _listed(page: str, list_id: str) -> dict[str, str]:
    """The asset → text of each entry in one of the column path's lists."""
    block = re.search(rf'<ul class="path-assets" id="{list_id}">(.*?)</ul>', page, re.S)
    assert block is not None, list_id
    return {
        html.unescape(name): re.sub(r"<[^>]+>", "", body)
        for name, body in re.findall(r'<li data-asset="([^"]*)"[^>]*>(.*?)</li>', block.group(1))
    }


# -- asset page ----------------------------------------------------------------------------------


def test_asset_page_lists_each_columns_upstream_and_downstream_columns(client: Any) -> None:
    page = _page(client.get("/assets/dlt_entries"))
    assert '<h2 id="cols-h">Columns</h2>' in page
    assert "3 columns · 2 with column lineage" in page
    sgv = _row(page, "sgv")
    assert '<a class="col-name" href="/lineage/dlt_entries?column=sgv"' in sgv
    up, down = sgv.split('<td class="col-down">')
    assert re.findall(r'href="([^"]+)">([^<]+)<span class="col">\.([^<]+)</span>', up) == [
        ("/assets/api", "api", "sgv")
    ]
    assert re.findall(r'href="([^"]+)">([^<]+)<span class="col">\.([^<]+)</span>', down) == [
        ("/assets/stg_entries", "stg_entries", "glucose_mg_dl"),
        ("/assets/stg_entries", "stg_entries", "glucose_mmol"),
    ]
    device = _row(page, "device")
    assert (
        '<a class="asset col-ref" href="/assets/devices">devices<span class="col">.device_id'
        in (device)
    )
    # The hostile downstream column is text inside the link, never markup.
    assert 'stg_entries<span class="col">.&lt;script&gt;alert(1)&lt;/script&gt;</span>' in device
    assert "—" in _row(page, "date_string")  # a column nothing maps
    # The same columns as the API's per-column listing.
    api = client.get("/api/v1/lineage/dlt_entries", params={"columns": "true"}).json()
    shown = re.findall(r'<tr data-column="([^"]*)">', page)
    assert [html.unescape(c) for c in shown] == [c["name"] for c in api["columns"]]


def test_asset_page_shows_the_importers_column_lineage_status(client: Any) -> None:
    page = _page(client.get("/assets/mart_glucose"))
    assert 'data-metric="column_lineage" data-value="resolved"' in page
    assert '<tr data-column="avg_glucose">' in page
    # No columns known, but the importer said why: the section is the status alone.
    page = _page(client.get("/assets/fct_unparsed"))
    assert 'data-metric="column_lineage" data-value="unresolved"' in page
    assert '<p class="col-reason">sqlglot could not parse &lt;the SQL&gt;</p>' in page
    assert "No columns recorded." in page


def test_asset_page_omits_the_columns_section_when_none_are_known(client: Any) -> None:
    page = _page(client.get("/assets/dashboard"))
    assert 'id="columns"' not in page and "cols-h" not in page


def test_a_wide_asset_lists_its_first_200_columns_and_says_how_many_more(client: Any) -> None:
    page = _page(client.get("/assets/wide_table"))
    assert len(re.findall(r'<tr data-column="', page)) == 200
    assert f"{WIDE_COLUMNS} columns · 0 with column lineage" in page
    assert "and 1800 more columns" in page
    assert '<tr data-column="c0199">' in page and '<tr data-column="c0200">' not in page
    # Too many to offer as a list on the lineage page: the form asks for a name instead.
    lineage = _page(client.get("/lineage/wide_table"))
    assert '<input name="column" id="column-select" type="search"' in lineage
    assert "<option" not in lineage.split('class="column-pick"')[1].split("</form>")[0]


# -- lineage page --------------------------------------------------------------------------------


def test_column_path_marks_exactly_the_assets_that_read_and_feed_the_column(client: Any) -> None:
    page = _page(client.get("/lineage/dlt_entries", params={"column": "sgv"}))
    marks = _marks(page)
    marked = {name: kinds for name, kinds in marks.items() if kinds}
    assert marked == {
        "dlt_entries": {"selected"},
        "api": {"feeds"},
        "stg_entries": {"impacted"},
        "mart_glucose": {"impacted"},  # two hops down, through stg_entries.glucose_mg_dl
        "dashboard": {"maybe"},
        'odd "quoted" \\ name': {"maybe"},
    }
    # The sibling that reads dlt_entries (another column) and what is below it stay plain.
    assert marks["devices"] == set() and marks["fct_unparsed"] == set()
    assert _edges(page, "hot") == {
        ("api", "dlt_entries"),
        ("dlt_entries", "stg_entries"),
        ("stg_entries", "mart_glucose"),
    }
    assert _edges(page, "maybe") == {
        ("stg_entries", "dashboard"),
        ("stg_entries", 'odd "quoted" \\ name'),
    }
    # Each node on the path names its columns.
    assert '<text class="note" x="13" y="37">glucose_mg_dl, glucose_mmol</text>' in page
    assert '<text class="note" x="13" y="37">avg_glucose</text>' in page
    assert 'class="dag has-selection column-path' in page


def test_column_path_lists_dependants_with_depth_and_may_depend_like_the_api(
    client: Any,
) -> None:
    page = _page(client.get("/lineage/dlt_entries", params={"column": "sgv"}))
    api = client.get("/api/v1/lineage/dlt_entries/impact", params={"column": "sgv"}).json()
    downstream = _listed(page, "path-downstream")
    assert list(downstream) == [a["name"] for a in api["assets"]]
    for asset in api["assets"]:
        text = downstream[asset["name"]]
        assert f"depth {asset['depth']}" in text
        assert ", ".join(asset["columns"]) in text
    assert "depth 1 · 2 columns: glucose_mg_dl, glucose_mmol" in downstream["stg_entries"]
    assert "depth 2 · 1 column: avg_glucose" in downstream["mart_glucose"]
    maybe = _listed(page, "path-maybe")
    assert list(maybe) == [m["name"] for m in api["unmapped"]]
    assert "reads stg_entries" in maybe["dashboard"]
    assert "May depend" in page
    assert _listed(page, "path-upstream") == {"api": "api depth 1: sgv"}
    assert f'data-metric="column_assets" data-value="{api["totals"]["assets"]}"' in page
    # The form offers the asset's columns, the traced one chosen.
    assert '<option value="sgv" selected>sgv</option>' in page
    assert '<option value="date_string">date_string</option>' in page


def test_column_names_match_case_insensitively_like_the_cli(client: Any) -> None:
    page = _page(client.get("/lineage/dlt_entries", params={"column": "SGV"}))
    assert "Path of column <code>dlt_entries.sgv</code>" in page


def test_a_column_that_reads_nothing_mapped_says_so(client: Any) -> None:
    page = _page(client.get("/lineage/dlt_entries", params={"column": "date_string"}))
    assert "No downstream column reads it." in page
    assert "No recorded upstream column." in page
    assert {n for n, kinds in _marks(page).items() if kinds} == {"dlt_entries"}


def test_an_unknown_column_is_a_404_page_with_did_you_mean_and_the_graph(client: Any) -> None:
    page = _page(client.get("/lineage/dlt_entries", params={"column": "sgvv"}), 404)
    assert "Unknown column &#39;sgvv&#39; of asset &#39;dlt_entries&#39;. Did you mean " in page
    assert 'id="column-problem" role="alert"' in page
    assert '<svg class="dag has-selection' in page  # the asset's lineage is still drawn
    assert "column-path" not in page.split("<svg")[1].split(">")[0]
    # Without an asset, a column cannot be traced: the page says how to ask.
    page = _page(client.get("/lineage", params={"column": "sgv"}), 400)
    assert "Choose an asset to trace one of its columns" in page
    # An unknown asset is still the not-found page it was.
    page = _page(client.get("/lineage/dlt_entris", params={"column": "sgv"}), 404)
    assert "Did you mean &#39;dlt_entries&#39;?" in page


def test_an_empty_column_choice_shows_the_asset_lineage(client: Any) -> None:
    page = _page(client.get("/lineage/dlt_entries", params={"column": ""}))
    assert 'id="column-path"' not in page and "column-problem" not in page
    assert '<option value="">— whole asset —</option>' in page


# -- escaping ------------------------------------------------------------------------------------


def test_a_hostile_column_name_renders_as_text_everywhere(client: Any) -> None:
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    asset = _page(client.get("/assets/stg_entries"))
    _assert_no_markup_injected(asset)
    assert f'<tr data-column="{escaped}">' in asset
    assert f'href="/lineage/stg_entries?column={quote(XSS_COLUMN, safe="")}"' in asset
    assert f"<code>{escaped}</code>" in asset
    lineage = _page(client.get("/lineage/stg_entries", params={"column": XSS_COLUMN}))
    _assert_no_markup_injected(lineage)
    assert f"Path of column <code>stg_entries.{escaped}</code>" in lineage
    assert f'<text class="note" x="13" y="37">{escaped}</text>' in lineage
    assert f'<option value="{escaped}" selected>{escaped}</option>' in lineage
    assert _listed(lineage, "path-upstream") == {
        "dlt_entries": "dlt_entries depth 1: device",
        "api": "api depth 2: device",  # upstream is transitive too
    }
    assert XSS_COLUMN not in lineage
    unknown = _page(client.get("/lineage/dlt_entries", params={"column": XSS_ASKED}), 404)
    _assert_no_markup_injected(unknown)
    assert "Unknown column &#39;&lt;img src=x onerror=alert(1)&gt;&#39;" in unknown
