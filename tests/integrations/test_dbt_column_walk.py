"""The scope walk that derives dbt column lineage answers as `sqlglot.lineage` does.

`dbt_columns` follows output columns through sqlglot's scopes itself (three times as fast as
`sqlglot.lineage`, which builds and copies a node per step); each query shape here must give
the same (table, column) pairs as `sqlglot.lineage` over the same qualified query.
"""

from __future__ import annotations

from typing import Any

import pytest

sqlglot = pytest.importorskip("sqlglot")

from lakelens.integrations.dbt_columns import _qualified_trace, _sqlglot_trace  # noqa: E402

SCHEMA = {
    "db": {
        "a": {"id": "INT", "x": "INT", "y": "TEXT", "ts": "DATE"},
        "b": {"id": "INT", "z": "INT", "w": "TEXT"},
    }
}

SHAPES = [
    "select a.id, b.z from db.a a join db.b b on a.id = b.id",
    "select id, x + z as s from db.a join db.b using (id)",
    "with c as (select id, x * 2 as x2 from db.a) "
    "select c.x2, (select max(z) from db.b where b.id = c.id) as mz from c",
    "select id, x from db.a union all select id, z from db.b",
    "select * from (select id, y from db.a) t",
    "select * from db.a",
    "with u as (select id, x from db.a union select id, z from db.b) "
    "select sum(x) as total, id from u group by id",
    "select id, row_number() over (partition by y order by ts) as rn, "
    "case when x > 0 then w else y end as label from db.a a left join db.b b on a.id = b.id",
    "select t.id, t.cnt from (select id, count(*) as cnt from db.b group by 1) as t where t.cnt > 1",
    "select a.*, b.w from db.a a join db.b b on a.id = b.id",
    "with recursive r as (select id, x from db.a union all "
    "select r.id, r.x + 1 from r where r.x < 10) select id, x from r",
    "select id, x from db.a qualify row_number() over (partition by id order by ts desc) = 1",
    "select coalesce(a.x, b.z) as v, a.id as id from db.a as a full outer join db.b as b "
    "on a.id = b.id",
    "select id, exists(select 1 from db.b where b.id = a.id) as has_b from db.a a",
    "select id, x from db.a where id in (select id from db.b)",
]


def _pairs(traced: dict[str, list[Any]]) -> dict[str, set[tuple[str, str]]]:
    return {out: {(t.name, c) for t, c in found} for out, found in traced.items()}


@pytest.mark.parametrize("sql", SHAPES)
def test_the_scope_walk_gives_sqlglots_lineage(sql: str) -> None:
    from sqlglot.optimizer.qualify import qualify
    from sqlglot.optimizer.scope import build_scope

    walked = _pairs(_qualified_trace(sqlglot.parse_one(sql, dialect="duckdb"), SCHEMA, "duckdb"))
    query = qualify(
        sqlglot.parse_one(sql, dialect="duckdb"),
        schema=SCHEMA,
        dialect="duckdb",
        validate_qualify_columns=False,
        identify=False,
    )
    expected = _pairs(_sqlglot_trace(build_scope(query), query, SCHEMA, "duckdb"))
    assert walked == expected
    assert any(walked.values())  # each shape reads something: an empty answer is no answer


def _project(models: int) -> tuple[dict[str, Any], dict[str, str]]:
    """A manifest of `models` chained models over two sources (each reads one or two earlier)."""
    cols = ["id", "amount", "status"]
    manifest: dict[str, Any] = {"metadata": {"adapter_type": "duckdb"}, "nodes": {}, "sources": {}}
    for s in range(2):
        manifest["sources"][f"source.p.raw.t{s}"] = {
            "resource_type": "source",
            "name": f"t{s}",
            "relation_name": f'"wh"."raw"."t{s}"',
            "columns": {c: {"name": c} for c in cols},
        }
    ids = list(manifest["sources"])
    for m in range(models):
        parents = [ids[-1], ids[m % len(ids)]] if m % 3 else [ids[-1]]
        relation = {
            u: (manifest["nodes"] | manifest["sources"])[u]["relation_name"] for u in parents
        }
        joins = "".join(
            f" join {relation[p]} p{i} on p0.id = p{i}.id" for i, p in enumerate(parents[1:], 1)
        )
        sql = (
            f"select p0.id, p0.amount * 2 as amount, p{len(parents) - 1}.status "
            f"from {relation[parents[0]]} p0{joins}"
        )
        if m % 7 == 6:
            sql = f"select * from {relation[parents[0]]}"
        uid = f"model.p.m{m}"
        manifest["nodes"][uid] = {
            "resource_type": "model",
            "name": f"m{m}",
            "relation_name": f'"wh"."main"."m{m}"',
            "depends_on": {"nodes": parents},
            "compiled_code": sql,
        }
        ids.append(uid)
    nodes = manifest["nodes"] | manifest["sources"]
    return manifest, {uid: node["name"] for uid, node in nodes.items()}


def test_worker_processes_derive_what_this_process_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """A big project is derived by a pool of processes as each model's parents finish; the
    answer is the one deriving upstream first in this process gives."""
    from lakelens.integrations import dbt_column_jobs, dbt_columns

    manifest, names = _project(60)
    alone = dbt_columns.derive(manifest, names, workers=1)
    assert len(alone.outputs) == 60 and not alone.unresolved
    assert alone.edges[("m5", "m6")] == {"id": ["id"], "amount": ["amount"], "status": ["status"]}

    monkeypatch.setattr(dbt_column_jobs, "POOL_FROM", 10)
    pooled: list[int] = []
    real = dbt_column_jobs._in_pool

    def counting(*args: Any) -> None:
        real(*args)
        pooled.append(len(args[0].finished))  # the models the pool finished

    monkeypatch.setattr(dbt_column_jobs, "_in_pool", counting)
    together = dbt_columns.derive(manifest, names, workers=2)
    assert pooled == [60]
    assert together.edges == alone.edges
    assert together.outputs == alone.outputs
    assert together.fingerprints == alone.fingerprints
