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
    "select a.id, sum(a.x) as s from db.a a group by a.id having s > 1": "output alias",
    "select sum(a.x) as x from db.a a, db.b b group by a.id having x > 0": "output alias",
    "select a.id, a.x as v from db.a a qualify row_number() over (partition by v order by a.ts) = 1": (
        "output alias"
    ),
    # Found by the random queries below: qualify checks a correlated column against its table.
    "select a.id, (select max(b.z) from db.b b where b.id = a.nope) as m from db.a a": (
        "not listed by its source"
    ),
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


def test_an_alias_in_having_over_a_relation_of_unknown_columns_stays_unresolved() -> None:
    """`qualify` cannot tell the alias from a column the unknown relation may have, and says
    so; the resolver leaves the query to it rather than answer."""
    sql = "select sum(a.x) as x from db.a a, db.c c group by a.id having x > 0"
    parents = [("a", ("db", "a"), ["id", "x"], None, "a"), ("c", ("db", "c"), None, None, "c")]
    task = Task("model.p.m", sql, "duckdb", parents)
    assert isinstance(_own(task), Fallback)
    outcome = dbt_columns.derive_one(task, own=True)
    assert outcome == dbt_columns.derive_one(task, own=False)
    assert outcome[0] == "unresolved" and "missing source schemas" in outcome[1]


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


# -- random queries: both paths over a few hundred generated shapes -----------------------


RANDOM_TABLES: dict[str, list[str] | None] = {"a": ["id", "x", "y", "ts"], "b": ["id", "z", "w"]}
RANDOM_TABLES["c"] = None


class _RandomQuery:
    """A random query over db.a, db.b and db.c (whose columns are unknown, or only documented):
    CTEs, derived tables, joins (on, using, comma, cross), stars, expressions, aggregates,
    windows, scalar, `exists` and `in` subqueries, unions, where, group by and order by, with
    now and then a column no relation has or a position out of range."""

    def __init__(self, seed: int) -> None:
        import random

        self.rng = random.Random(seed)

    def query(self) -> str:
        ctes: dict[str, tuple[str, list[str]]] = {}
        if self.rng.random() < 0.5:
            for i in range(self.rng.randint(1, 2)):
                ctes[f"q{i}"] = self.select(1, dict(ctes))
        sql, outputs = self.select(0, ctes)
        if self.rng.random() < 0.15:
            other, others = self.select(0, ctes, width=len(outputs))
            if len(others) == len(outputs):
                sql = f"{sql} union all {other}"
        if ctes:
            defined = ", ".join(f"{name} as ({q})" for name, (q, _) in ctes.items())
            sql = f"with {defined} {sql}"
        return sql

    def relation(self, depth: int, ctes: dict[str, tuple[str, list[str]]]) -> tuple[str, list[str]]:
        roll = self.rng.random()
        if ctes and roll < 0.35:
            name = self.rng.choice(list(ctes))
            return name, ctes[name][1]
        if depth < 2 and roll < 0.5:
            sql, outputs = self.select(depth + 1, ctes)
            return f"({sql})", outputs
        table = self.rng.choice(["a", "a", "b", "b", "c"])
        return f"db.{table}", RANDOM_TABLES[table] or ["id", "q"]

    def select(
        self, depth: int, ctes: dict[str, tuple[str, list[str]]], width: int | None = None
    ) -> tuple[str, list[str]]:
        rng = self.rng
        relations = [self.relation(depth, ctes) for _ in range(rng.choice([1, 1, 2, 2, 3]))]
        aliases = [f"t{i}" for i in range(len(relations))]
        every = [c for _, columns in relations for c in columns]

        def column() -> str:
            i = rng.randrange(len(relations))
            name = rng.choice(relations[i][1] + (["nope"] if rng.random() < 0.03 else []))
            return f"{aliases[i]}.{name}" if rng.random() < 0.75 else name

        def expression() -> str:
            shapes = [
                column,
                lambda: f"{column()} + {column()}",
                lambda: f"coalesce({column()}, 0)",
                lambda: f"sum({column()})",
                lambda: "1",
                lambda: "count(*)",
                lambda: f"(select max(b.z) from db.b b where b.id = {column()})",
                lambda: f"case when {column()} > 0 then {column()} else {column()} end",
                lambda: f"row_number() over (partition by {column()} order by {column()})",
                lambda: f"exists(select 1 from db.a aa where aa.id = {column()})",
                lambda: f"cast({column()} as int)",
            ]
            weights = [45, 10, 7, 6, 3, 3, 6 if depth < 2 else 0, 4, 4, 4, 8]
            return rng.choices(shapes, weights)[0]()

        projections, outputs = [], []
        for i in range(width or rng.randint(1, 4)):
            roll = rng.random()
            if roll < 0.05 and not width:
                projections.append("*")
                outputs.extend(every)
            elif roll < 0.1 and not width:
                j = rng.randrange(len(relations))
                projections.append(f"{aliases[j]}.*")
                outputs.extend(relations[j][1])
            elif roll < 0.75:
                name = f"o{i}" if rng.random() < 0.85 else rng.choice(every)
                projections.append(f"{expression()} as {name}")
                outputs.append(name)
            else:
                projections.append(column())
                outputs.append(projections[-1].split(".")[-1])
        sql = f"select {', '.join(projections)} from {relations[0][0]} t0"
        for i, (relation, _) in enumerate(relations[1:], 1):
            sql += rng.choice(
                [
                    f" left join {relation} t{i} on t0.id = t{i}.id",
                    f" join {relation} t{i} using (id)",
                    f", {relation} t{i}",
                    f" cross join {relation} t{i}",
                ]
            )
        where = f" where {column()} > 0"
        where += f" and {column()} in (select id from db.a)" * (rng.random() < 0.3)
        group = f" group by {rng.choice(['1', column(), str(len(outputs) + 1)])}"
        group += f" having {rng.choice(['count(*) > 1', column(), 'o0', 'o1'])} > 0" * (
            rng.random() < 0.3
        )
        qualify = f" qualify row_number() over (partition by {rng.choice([column(), 'o0'])}) = 1"
        order = f" order by {rng.choice(['1', column(), 'o0'])}"
        clauses = ((0.4, where), (0.3, group), (0.05, qualify), (0.1, order))
        sql += "".join(text for chance, text in clauses if rng.random() < chance)
        return sql, list(dict.fromkeys(outputs))


@pytest.mark.parametrize("seed", range(4))
def test_random_queries_are_resolved_as_qualify_does(seed: int) -> None:
    """Both paths over 150 random queries per seed; a share of them the resolver answers."""
    random_query = _RandomQuery(seed)
    answered = 0
    for i in range(150):
        sql = random_query.query()
        dialect = [None, "duckdb", "postgres", "spark", "trino", "snowflake"][i % 6]
        documented = ["id", "q"] if i % 2 else None
        parents = [
            (name, ("db", name), columns, None if columns else documented, name)
            for name, columns in RANDOM_TABLES.items()
        ]
        task = Task("model.p.m", sql, dialect, parents)
        assert dbt_columns.derive_one(task, own=True) == dbt_columns.derive_one(task, own=False), (
            dialect,
            sql,
        )
        try:
            found = _own(task)
        except sqlglot.errors.ParseError:
            continue
        answered += not isinstance(found, Fallback)
    assert answered >= 5
