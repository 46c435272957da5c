"""One asset, many names: dbt relations and unique ids, OpenLineage datasets, Dagster keys and
names declared in lakelens.yaml resolve to one asset, and the other names are kept as aliases.

Where aliases come from:

| name                                                   | alias of                       | source   |
|--------------------------------------------------------|--------------------------------|----------|
| dbt relation `db.schema.table` and `schema.table`, unique_id | the dbt node's asset     | dbt      |
| Dagster key `a/b` (the asset is `a.b`)                 | the Dagster asset              | dagster  |
| `assets: aliases:` in lakelens.yaml                    | the asset named there          | config   |
| an incoming name that resolved to another asset        | that asset                     | the part's ingest source |

An incoming name resolves when it is an alias itself, or, for an OpenLineage-shaped name
(`namespace/name`), when its name or the dotted tail of it with two or more parts is one:
`duckdb:///w/shop.duckdb/shop.main.fct_revenue` tries `shop.main.fct_revenue`, then
`main.fct_revenue`, each also lower-cased. A bare `fct_revenue` tail never matches: it is
too often in two schemas.

Every batch is resolved once, in the store's write transaction (`store.writes`). When a new
alias names an asset already recorded under that name (dbt-ol events stored before
`lakelens import dbt`), that asset's rows move to the canonical name in the same transaction.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from lakelens.errors import ConfigError
from lakelens.events import LOG_COLUMNS, SPAN_COLUMNS, Batch, usage_id

if TYPE_CHECKING:
    import sqlalchemy as sa

    from lakelens.config import Settings
    from lakelens.model import Asset

__all__ = ["apply", "candidates", "declared_aliases", "derived_aliases", "relation_aliases"]

_LOG_ASSET = LOG_COLUMNS.index("asset")
_SPAN_ASSET = SPAN_COLUMNS.index("asset")
_MAX_ALIAS = 512
# Rows moved from an asset's old name to its canonical one (lineage edges are done apart).
_RENAMED = (
    "materializations",
    "check_results",
    "logs",
    "spans",
    "schema_snapshots",
    "metric_points",
    "profiles",
    "table_observations",
    "asset_usage",
)
_STATE = (
    "last_status",
    "last_start_time",
    "last_end_time",
    "last_run_id",
    "failure_streak",
)
# A quoted identifier ("a.b", `a`, [a]) or a bare one, between dots.
_PART = re.compile(r'"((?:[^"]|"")*)"|`([^`]*)`|\[([^\]]*)\]|([^.]+)')


def relation_aliases(relation: str) -> list[str]:
    """`"db"."schema"."table"` → [`db.schema.table`, `schema.table`] (quotes dropped)."""
    parts: list[str] = []
    for match in _PART.finditer(relation.strip()):
        quoted, tick, bracket, bare = match.groups()
        part = quoted.replace('""', '"') if quoted is not None else tick or bracket or bare
        if part and part.strip():
            parts.append(part.strip())
    return [".".join(parts[i:]) for i in range(len(parts) - 1)]


def derived_aliases(asset: Asset) -> dict[str, str]:
    """The aliases an asset's own tags give it (dbt relation and unique id, Dagster key)."""
    found: dict[str, str] = {}
    relation = asset.tags.get("dbt.relation")
    if relation:
        for alias in relation_aliases(relation):
            found.setdefault(alias, "dbt")
            found.setdefault(alias.lower(), "dbt")
    for tag, source in (("dbt.unique_id", "dbt"), ("dagster.asset_key", "dagster")):
        if asset.tags.get(tag):
            found.setdefault(asset.tags[tag], source)
    found.pop(asset.name, None)
    return {a: s for a, s in found.items() if len(a) <= _MAX_ALIAS}


def candidates(name: str) -> list[str]:
    """The keys an incoming asset name is looked up under, best first."""
    keys = [name]
    if "/" in name:
        tail = name.rsplit("/", 1)[1]
        parts = tail.split(".")
        for i in range(len(parts) - 1):
            keys.append(".".join(parts[i:]))
        keys += [k.lower() for k in keys[1:]]
    return list(dict.fromkeys(k for k in keys if k))


def declared_aliases(settings: Settings) -> dict[str, str]:
    """alias → asset from `assets: aliases: {asset: [alias, …]}` in lakelens.yaml."""
    where = settings.config_file or "lakelens.yaml"
    section = settings.raw.get("assets") if isinstance(settings.raw, Mapping) else None
    if not section:
        return {}
    mapping = section.get("aliases") if isinstance(section, Mapping) else None
    if not mapping:
        return {}
    if not isinstance(mapping, Mapping):
        raise ConfigError(
            f"assets.aliases in {where} must map an asset to a list of its other names."
        )
    aliases: dict[str, str] = {}
    for asset, names in mapping.items():
        listed = [names] if isinstance(names, str) else names
        if not isinstance(listed, list) or not all(isinstance(n, str) for n in listed):
            raise ConfigError(
                f"assets.aliases.{asset} in {where} must be a list of names, got {names!r}."
            )
        for alias in listed:
            if alias == asset:
                continue
            earlier = aliases.get(alias)
            if earlier is not None and earlier != str(asset):
                raise ConfigError(
                    f"Alias {alias!r} in {where} is mapped to both {earlier!r} and {asset!r}; "
                    "list it under one asset only."
                )
            aliases[alias] = str(asset)
    for alias, asset in aliases.items():
        if asset in aliases:
            raise ConfigError(
                f"{asset!r} in {where} has aliases but is itself an alias of "
                f"{aliases[asset]!r}; list {alias!r} under {aliases[asset]!r} instead."
            )
    return aliases


# -- the write path -------------------------------------------------------------------------


class _Sql:
    """Plain SQL on the write transaction's DBAPI cursor (`?` on SQLite, `%s` on PostgreSQL)."""

    def __init__(self, cursor: Any, mark: str) -> None:
        self.cursor = cursor
        self.mark = mark

    def run(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        self.cursor.execute(sql.replace("?", self.mark), tuple(params))
        return list(self.cursor.fetchall()) if self.cursor.description else []

    def known(self, keys: Iterable[str]) -> dict[str, str]:
        """alias → asset for those of `keys` that are aliases."""
        keys = list(dict.fromkeys(keys))
        found: dict[str, str] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            found.update(
                self.run(f"SELECT alias, asset FROM asset_aliases WHERE alias IN ({marks})", chunk)
            )
        return found

    def add(self, alias: str, asset: str, source: str, now: float) -> None:
        self.run(
            "INSERT INTO asset_aliases (alias, asset, source, time) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (alias) DO NOTHING",
            (alias, asset, source, now),
        )


def batch_names(batch: Batch) -> set[str]:
    """Every asset name a batch mentions."""
    names = {a.name for a in batch.assets}
    names.update(m.asset for m in batch.materializations)
    names.update(c.asset for c in batch.checks)
    names.update(s.asset for s in batch.schemas)
    names.update(p.asset for p in batch.profiles)
    for edge in batch.edges:
        names.update((edge.upstream, edge.downstream))
    names.update(m.asset for m in batch.metrics if m.asset)
    names.update(row[_LOG_ASSET] for row in batch.logs if row[_LOG_ASSET])
    names.update(row[_SPAN_ASSET] for row in batch.spans if row[_SPAN_ASSET])
    names.update(o.asset for o in batch.observations)
    names.update(u.asset for u in batch.usage)
    return names


def apply(
    cursor: Any,
    mark: str,
    batch: Batch,
    *,
    source: str,
    lock: str | None = None,
    now: float | None = None,
) -> Batch:
    """Register the batch's own aliases, then return it with every asset name canonical.

    Runs inside the write transaction; `lock` (SQL) is run before rows move between names.
    Returns `batch` itself when no name changes.
    """
    names = batch_names(batch)
    if not names:
        return batch
    now = time.time() if now is None else now
    sql = _Sql(cursor, mark)
    offered: dict[str, tuple[str, str]] = {}
    for asset in batch.assets:
        for alias, alias_source in derived_aliases(asset).items():
            offered.setdefault(alias, (asset.name, alias_source))
    keys = [k for name in names for k in candidates(name)]
    known = sql.known([*keys, *offered, *(a for a, _ in offered.values())])
    new: dict[str, str] = {}
    for alias, (owner, alias_source) in offered.items():
        if alias in known:
            continue  # the first registration (or lakelens.yaml) wins
        owner = known.get(owner, owner)
        sql.add(alias, owner, alias_source, now)
        known[alias] = new[alias] = owner
    if new:
        if lock:
            sql.run(lock)
        merge_names(sql, new, now)
    renamed: dict[str, str] = {}
    for name in names:
        for key in candidates(name):
            target = known.get(key)
            if target is not None and target != name:
                renamed[name] = target
                if key != name:
                    sql.add(name, target, source, now)
                    known[name] = target
                break
    return _renamed(batch, renamed) if renamed else batch


def _renamed(batch: Batch, names: dict[str, str]) -> Batch:
    def n(name: str) -> str:
        return names.get(name, name)

    def row(values: tuple[Any, ...], index: int) -> tuple[Any, ...]:
        if values[index] not in names:
            return values
        return (*values[:index], names[values[index]], *values[index + 1 :])

    return Batch(
        assets=[replace(a, name=n(a.name)) if a.name in names else a for a in batch.assets],
        runs=batch.runs,
        materializations=[
            replace(m, asset=n(m.asset)) if m.asset in names else m for m in batch.materializations
        ],
        checks=[replace(c, asset=n(c.asset)) if c.asset in names else c for c in batch.checks],
        logs=[row(r, _LOG_ASSET) for r in batch.logs],
        spans=[row(r, _SPAN_ASSET) for r in batch.spans],
        edges=[
            replace(e, upstream=n(e.upstream), downstream=n(e.downstream))
            if e.upstream in names or e.downstream in names
            else e
            for e in batch.edges
        ],
        schemas=[replace(s, asset=n(s.asset)) if s.asset in names else s for s in batch.schemas],
        metrics=[replace(m, asset=n(m.asset)) if m.asset in names else m for m in batch.metrics],
        profiles=[replace(p, asset=n(p.asset)) if p.asset in names else p for p in batch.profiles],
        observations=[
            replace(o, asset=n(o.asset)) if o.asset in names else o for o in batch.observations
        ],
        # A dashboard's own views name it twice: as the asset and as the reader.
        usage=[
            replace(u, asset=n(u.asset), reader=n(u.reader) if u.reader == u.asset else u.reader)
            if u.asset in names
            else u
            for u in batch.usage
        ],
    )


def merge_names(sql: _Sql, aliases: Mapping[str, str], now: float) -> list[tuple[str, str]]:
    """Move the rows of recorded assets that the new `aliases` resolve to their canonical
    asset; returns the (old, new) name pairs moved."""
    moves: list[tuple[str, str]] = []
    for (name,) in sql.run("SELECT name FROM assets"):
        for key in candidates(name):
            target = aliases.get(key)
            if target is not None and target != name:
                moves.append((name, target))
                break
    for alias, target in aliases.items():
        sql.run("UPDATE asset_aliases SET asset = ? WHERE asset = ?", (target, alias))
    for old, new in moves:
        _move(sql, old, new, now)
    return moves


# Every column of an edge but its upstream and downstream: a moved edge keeps them all.
_EDGE_REST = "source, columns, column_details, updated_at"


def _move(sql: _Sql, old: str, new: str, now: float) -> None:
    _move_usage(sql, old, new)
    for table in _RENAMED:
        sql.run(f"UPDATE {table} SET asset = ? WHERE asset = ?", (new, old))
    sql.run(
        "UPDATE asset_usage SET reader = ? WHERE asset = ? AND reader = ? AND kind = 'view'",
        (new, new, old),
    )
    # The rollup triggers moved the counts and left the old name's hours at zero.
    sql.run(
        "DELETE FROM asset_hours WHERE asset = ? AND materializations = 0 AND checks = 0",
        (old,),
    )
    # An edge may exist under both names: keep one (ON CONFLICT), then drop the old name's.
    sql.run(
        f"INSERT INTO lineage_edges (upstream, downstream, {_EDGE_REST}) "
        f"SELECT ?, downstream, {_EDGE_REST} FROM lineage_edges "
        "WHERE upstream = ? ON CONFLICT DO NOTHING",
        (new, old),
    )
    sql.run(
        f"INSERT INTO lineage_edges (upstream, downstream, {_EDGE_REST}) "
        f"SELECT upstream, ?, {_EDGE_REST} FROM lineage_edges "
        "WHERE downstream = ? ON CONFLICT DO NOTHING",
        (new, old),
    )
    sql.run("DELETE FROM lineage_edges WHERE upstream = ? OR downstream = ?", (old, old))
    sql.run("DELETE FROM lineage_edges WHERE upstream = ? AND downstream = ?", (new, new))
    _merge_asset_row(sql, old, new)
    sql.run("UPDATE asset_aliases SET asset = ? WHERE asset = ?", (new, old))
    sql.add(old, new, "merged", now)


def _move_usage(sql: _Sql, old: str, new: str) -> None:
    """Give a run's uses of `old` the id they have under `new` (events.usage_id), so that a
    later report of the same run under either name is still the same row; where `new`
    already has that run's use, the old row goes."""
    for key, kind, run_id in sql.run(
        "SELECT id, kind, run_id FROM asset_usage WHERE asset = ? AND id < 0", (old,)
    ):
        moved = usage_id(kind, new, run_id)
        if sql.run("SELECT 1 FROM asset_usage WHERE id = ?", (moved,)):
            sql.run("DELETE FROM asset_usage WHERE id = ?", (key,))
        else:
            sql.run("UPDATE asset_usage SET id = ?, asset = ? WHERE id = ?", (moved, new, key))


def _merge_asset_row(sql: _Sql, old: str, new: str) -> None:
    """Keep the canonical row's definition; take the newer latest outcome of the two."""
    wanted = ", ".join(("kind", *_STATE, "last_success_time", "last_failure_time"))
    rows = {
        r[0]: r[1:]
        for r in sql.run(f"SELECT name, {wanted} FROM assets WHERE name IN (?, ?)", (old, new))
    }
    if old not in rows:
        return
    before = rows[old]
    if new not in rows:
        sql.run("UPDATE assets SET name = ? WHERE name = ?", (new, old))
        return
    after = rows[new]
    sets: dict[str, Any] = {}
    # Indexes into (kind, *_STATE, last_success_time, last_failure_time).
    if before[2] is not None and (after[2] is None or before[2] > after[2]):
        sets.update(zip(_STATE, before[1 : 1 + len(_STATE)], strict=True))
    for index, column in ((6, "last_success_time"), (7, "last_failure_time")):
        if before[index] is not None and (after[index] is None or before[index] > after[index]):
            sets[column] = before[index]
    if sets:
        assignments = ", ".join(f"{c} = ?" for c in sets)
        sql.run(f"UPDATE assets SET {assignments} WHERE name = ?", (*sets.values(), new))
    sql.run("DELETE FROM assets WHERE name = ?", (old,))


# -- aliases declared in lakelens.yaml ------------------------------------------------------


def sync_declared(engine: sa.Engine, settings: Settings) -> None:
    """Store the aliases lakelens.yaml declares (they override derived ones), merging any asset
    recorded under a newly declared alias; nothing is written when the store already agrees."""
    declared = declared_aliases(settings)
    from lakelens.store.engine import is_sqlite
    from lakelens.store.writes import LOCK_ROLLUPS

    with engine.connect() as conn:
        stored: dict[str, str] = dict(
            conn.exec_driver_sql(
                "SELECT alias, asset FROM asset_aliases WHERE source = 'config'"
            ).all()
        )
        conn.rollback()
        if stored == declared:
            return
        sqlite = is_sqlite(engine)
        if sqlite:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.begin()
        cursor = conn.connection.cursor()
        try:
            if not sqlite:
                cursor.execute(LOCK_ROLLUPS)
            sql = _Sql(cursor, "?" if sqlite else "%s")
            now = time.time()
            gone = [a for a in stored if a not in declared]
            for alias in gone:
                sql.run("DELETE FROM asset_aliases WHERE alias = ? AND source = 'config'", (alias,))
            changed = {a: t for a, t in declared.items() if stored.get(a) != t}
            for alias, asset in changed.items():
                sql.run(
                    "INSERT INTO asset_aliases (alias, asset, source, time) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (alias) DO UPDATE SET asset = excluded.asset, "
                    "source = excluded.source, time = excluded.time",
                    (alias, asset, "config", now),
                )
            if changed:
                merge_names(sql, changed, now)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            cursor.close()
