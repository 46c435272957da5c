"""lakelens' own column resolver gives the answer sqlglot's `qualify` + the scope walk give.

`dbt_column_resolve.resolve` reads the common query shapes without `qualify` and falls back
to it for anything it cannot decide with certainty. Each test runs both paths (`derive_one`
with `own=True`, and with `own=False`: `qualify` alone) and asserts the same outcome, down to
the order of the columns; the shapes that must fall back are checked to do so.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest

sqlglot = pytest.importorskip("sqlglot")

from _support import load_module  # noqa: E402
from lakelens.integrations import dbt_columns  # noqa: E402
from lakelens.integrations.dbt_column_jobs import Task  # noqa: E402
from lakelens.integrations.dbt_column_resolve import Fallback, resolve  # noqa: E402

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
_walk = load_module("lakelens_tests_dbt_column_walk", HERE / "test_dbt_column_walk.py")
SCHEMA = _walk.SCHEMA

# Shapes the resolver answers itself (besides test_dbt_column_walk's, some of which fall back).
RESOLVED = [
    "select a.id, a.x as x2, 1 as one, 'k', upper(y) from db.a as a",
    "select a.id, z from db.a a join db.b b on a.id = b.id",
    "select x from db.a order by 1",
    "with t as (select id, x from db.a), u as (select t.id, b.z from t join db.b b on t.id = b.id) "
    "select * from u",
    "select t.* from (select id, x from db.a) t",
    "select x, count(*) as n from db.a group by x having count(*) > 1",
    "select id, x from db.a union all select id, z from db.b union all select id, 1 from db.a",
    "select sum(x) over (partition by y order by ts rows between 1 preceding and current row) as s "
    "from db.a",
    "select id, x from db.a where exists (select 1 from db.b where b.id = a.id)",
    "select a.id, (select max(b.z) from db.b b where b.id = a.id) as mz from db.a a",
    "select x from db.a, db.b",
    "select a.x, b.z from db.a a left join db.b b on a.id = b.id and b.w = 'x'",
    "select coalesce(x, 0), x * 2 as x2 from db.a",
    'select "a"."id", "x" from "db"."a" "a"',
    "select a.id, s.total from db.a a join (select id, sum(z) as total from db.b group by id) s "
    "on a.id = s.id",
    "select x, (select id from db.b order by id limit 1) as f from db.a",
    "select a.id, a.x + b.z as s, w from db.a a join db.b b using (id)",
    "with c as (select id, z from db.b) select a.x, c.z from db.a a left join c using (id) "
    "join db.b b using (id)",
    "with base as (select a.id, a.x, b.z from db.a a left join db.b b on a.id = b.id) "
    "select id, sum(x + z) as v from base group by id",
]

# Shapes the resolver leaves to `qualify`, with why.
FALLS_BACK = {
    "select id, x + z as s from db.a join db.b using (id)": "of no single source",
    "select * from db.a join db.b using (id)": "star over a using join",
    "select a.x from db.a a join db.b b using (x)": "a using column x",
    "select a.x from db.a a natural join db.b b": "join with options",
    "select id, x from db.a a join db.b b on a.id = b.id": "of no single source",
    "select q from db.a": "of no single source",
    "select a.q from db.a a": "not listed by its source",
    "select x from db.a group by 2": "position out of range",
    "select id from db.c": "does not depend on",
    "select ID from db.a": "not lower case",
    'select "X" from db.a': "not lower case",
    "select x as total from db.a order by total": "of no single source",
    "select * from db.a a join db.b b on a.id = b.id": "output name given twice",
    "select cast(x as int), x from db.a": "output name given twice",
    "with recursive r as (select id, x from db.a union all select r.id, r.x + 1 from r "
    "where r.x < 10) select id, x from r": "recursive",
    "select * from (select id, x from db.a)": "without alias",
    "select t.i, t.j from (select id, x from db.a) t(i, j)": "column aliases",
    "select * from db.a pivot (sum(x) for y in ('p', 'q'))": "table with options",
    "select u.v from db.a, unnest(list_value(1, 2)) as u(v)": "column aliases",
    "select u.unnest from db.a, unnest(list_value(1, 2)) as u": "Unnest",
    "select x from db.a where x in (select unnest(list_value(1, 2)))": "Explode",
    "select id from db.a union select id from db.b order by id": "set operation with clauses",
    "select list_transform(list_value(x), e -> e + 1) as l from db.a": "Lambda",
    "select * exclude (x) from db.a": "star with modifiers",
    "select a.id from db.a a semi join db.b b on a.id = b.id": "semi or anti",
    "select x, y as x from db.a": "output name given twice",
}

DIALECTS = [None, "duckdb", "postgres", "redshift", "trino", "spark", "sqlite", "snowflake"]


def _task(sql: str, dialect: str | None) -> Task:
    parents = [
        (name, ("db", name), list(columns), None, name) for name, columns in SCHEMA["db"].items()
    ]
    return Task("model.p.m", sql, dialect, parents)


def _own(task: Task) -> Any:
    """The resolver's answer, or the Fallback it raised (given what `_lineage` gives it)."""
    known = {key: cols if cols is not None else doc for _, key, cols, doc, _ in task.parents}
    try:
        return resolve(sqlglot.parse_one(task.sql, dialect=task.dialect), known, task.dialect)
    except Fallback as exc:
        return exc


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("sql", _walk.SHAPES + RESOLVED + list(FALLS_BACK))
def test_the_resolver_answers_as_qualify_does(sql: str, dialect: str | None) -> None:
    task = _task(sql, dialect)
    assert dbt_columns.derive_one(task, own=True) == dbt_columns.derive_one(task, own=False)


@pytest.mark.parametrize("sql", RESOLVED)
def test_common_shapes_are_resolved_without_qualify(sql: str) -> None:
    found = _own(_task(sql, "duckdb"))
    assert not isinstance(found, Fallback), found
    assert any(found.values())


@pytest.mark.parametrize(("sql", "why"), FALLS_BACK.items())
def test_uncertain_shapes_fall_back_to_qualify(sql: str, why: str) -> None:
    found = _own(_task(sql, "duckdb"))
    assert isinstance(found, Fallback) and why in str(found), found


def test_dialects_that_fold_case_or_expand_aliases_early_fall_back() -> None:
    """Snowflake upper-cases identifiers; BigQuery expands aliases before qualifying."""
    for dialect in ("snowflake", "bigquery", "clickhouse", "oracle"):
        found = _own(_task("select a.id from db.a a", dialect))
        assert isinstance(found, Fallback) and "dialect" in str(found)


def _both(
    monkeypatch: pytest.MonkeyPatch,
    manifest: dict[str, Any],
    catalog: dict[str, Any] | None = None,
) -> tuple[dbt_columns.ColumnLineage, dbt_columns.ColumnLineage, list[Task]]:
    """`derive` with the resolver, then with `qualify` alone; the tasks it derived."""
    names = {
        uid: str(node.get("name") or uid)
        for key in ("nodes", "sources")
        for uid, node in manifest.get(key, {}).items()
    }
    tasks: list[Task] = []
    own = dbt_columns.derive(
        manifest, names, catalog=catalog, report=lambda task, _: tasks.append(task)
    )
    with monkeypatch.context() as patched:
        real = dbt_columns.derive_one
        patched.setattr(dbt_columns, "derive_one", functools.partial(real, own=False))
        qualified = dbt_columns.derive(manifest, names, catalog=catalog)
    return own, qualified, tasks


def _assert_same(own: dbt_columns.ColumnLineage, qualified: dbt_columns.ColumnLineage) -> None:
    assert own.edges == qualified.edges
    assert own.outputs == qualified.outputs
    assert own.unresolved == qualified.unresolved
    assert own.fingerprints == qualified.fingerprints  # re-imports re-use either's answers


def test_every_model_of_the_bench_project_is_resolved_as_qualify_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bench = load_module("lakelens_bench_column_impact", ROOT / "bench" / "column_impact.py")
    manifest, _ = bench._project(500, sources=20, columns=20)
    own, qualified, tasks = _both(monkeypatch, manifest)
    _assert_same(own, qualified)
    assert len(tasks) == 500 and len(own.edges) > 900
    for task in tasks:
        outcome = dbt_columns.derive_one(task, own=True)
        assert outcome == dbt_columns.derive_one(task, own=False)
        if outcome[0] == "ok":  # the resolver answered each one itself
            assert not isinstance(_own(task), Fallback), task.sql


@pytest.mark.parametrize(
    "version", sorted(p.name for p in (HERE / "fixtures" / "dbt").iterdir() if p.is_dir())
)
@pytest.mark.parametrize("with_catalog", [False, True])
def test_every_dbt_fixture_is_resolved_as_qualify_does(
    monkeypatch: pytest.MonkeyPatch, version: str, with_catalog: bool
) -> None:
    manifest = json.loads((HERE / "fixtures" / "dbt" / version / "manifest.json").read_text())
    catalog = _catalog(manifest) if with_catalog else None
    own, qualified, tasks = _both(monkeypatch, manifest, catalog)
    _assert_same(own, qualified)
    assert tasks and own.outputs
    for task in tasks:
        assert dbt_columns.derive_one(task, own=True) == dbt_columns.derive_one(task, own=False)
    # With the catalog the staging model's unqualified columns have one owner, and the mart's
    # `using` join reads the seed's `name`: both resolved here; without it, left to qualify.
    for model in ("stg_orders", "fct_orders"):
        task = next(t for t in tasks if t.uid.endswith(model))
        assert isinstance(_own(task), Fallback) is not with_catalog, model


def _catalog(manifest: dict[str, Any]) -> dict[str, Any]:
    """A catalog.json as `dbt docs generate` would write it for the fixture project's seed and
    source (the columns its warehouse has)."""
    tables = {
        "customers": ["customer_id", "name", "segment"],
        "orders": ["order_id", "customer_id", "amount", "status", "loaded_at"],
    }
    catalog: dict[str, Any] = {"nodes": {}, "sources": {}}
    for key in ("nodes", "sources"):
        for uid, node in manifest.get(key, {}).items():
            if node.get("name") in tables and node.get("resource_type") in ("seed", "source"):
                columns = tables[node["name"]]
                catalog[key][uid] = {
                    "columns": {c: {"name": c, "index": i + 1} for i, c in enumerate(columns)}
                }
    return catalog
