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
