"""Column lineage of dbt models, derived from their compiled SQL with sqlglot.

dbt knows which models a model reads (`depends_on`), not which columns. This module parses
each compiled model and snapshot in the adapter's SQL dialect, qualifies it against the
columns of the relations it reads, and follows every output column back to the columns of
those relations. Models are read upstream first, so the output columns found for one model
expand `select *` in the models that read it.

The columns of a relation come from dbt's `catalog.json` (written by `dbt docs generate`),
the output columns derived here, or the latest schema snapshot lakelens holds for the asset
(unless it merely repeats the documented columns, as the snapshot dbt's own import stores does).
The columns documented in the manifest help qualify column names, but never expand a
`select *`: documentation may leave columns out.

What cannot be derived is reported per model with its reason, never raised: SQL sqlglot
cannot parse, a `select *` over a relation whose columns are unknown, a model that is not a
query.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakelens.integrations.dbt_column_jobs import Ahead, Outcome, Task, schedule

if TYPE_CHECKING:
    from lakelens.events import Batch
    from lakelens.store import Store

__all__ = ["COLUMN_LINEAGE_TAG", "ColumnLineage", "add_column_lineage", "derive", "dialect_of"]


# The tag `lakelens.analysis.column_lineage` reads (the same constant; importing that module
# loads the lineage analysis, 13 ms on the import's path).
COLUMN_LINEAGE_TAG = "lakelens.column_lineage"

# dbt adapter type → sqlglot dialect, where the names differ.
_DIALECTS = {
    "sqlserver": "tsql",
    "synapse": "tsql",
    "fabric": "fabric",
    "glue": "spark",
    "impala": "hive",
    "postgres": "postgres",
    "redshift": "redshift",
}
_MAX_REASON = 300
# A model's fingerprint (compiled SQL, dialect, its parents' names and columns) and output
# columns: the next import re-uses its derived lineage while the fingerprint is unchanged.
FINGERPRINT_TAG = COLUMN_LINEAGE_TAG + "_fingerprint"
OUTPUTS_TAG = COLUMN_LINEAGE_TAG + "_outputs"
_MAX_OUTPUTS_CHARS = 16_000  # wider models are derived again on each import
_CACHE_VERSION = "1"


@dataclass(frozen=True)
class Previous:
    """What an earlier import derived for one model (read back from the store)."""

    fingerprint: str
    outputs: list[str]
    unresolved: str | None
    # upstream asset → {output column: [upstream columns]}
    edges: dict[str, dict[str, list[str]]]


@dataclass
class ColumnLineage:
    """What `derive` found: column mappings per edge, and the models it could not read."""

    dialect: str | None
    # (upstream asset, downstream asset) → {downstream column: [upstream columns]}
    edges: dict[tuple[str, str], dict[str, list[str]]] = field(default_factory=dict)
    # asset → its output columns, in select order
    outputs: dict[str, list[str]] = field(default_factory=dict)
    # asset → why its column lineage is unresolved
    unresolved: dict[str, str] = field(default_factory=dict)
    # asset → the fingerprint of what its lineage was derived from
    fingerprints: dict[str, str] = field(default_factory=dict)
    # assets whose lineage an earlier import derived from the same fingerprint
    reused: set[str] = field(default_factory=set)


def add_column_lineage(
    batch: Batch,
    manifest: Mapping[str, Any],
    names: Mapping[str, str],
    *,
    catalog: Mapping[str, Any] | None,
    store: Store,
    say: Callable[[str], None],
    workers: int | None = 1,
    ahead: Ahead | None = None,
) -> dict[str, str]:
    """Give the batch's dbt edges their derived column mappings and tag each model with the
    outcome; returns the unresolved models with their reasons."""
    try:
        import sqlglot  # noqa: F401
    except ImportError:
        say("Column lineage skipped: it needs sqlglot (pip install sqlglot, or dbt-core)")
        return {}
    say("Deriving column lineage from compiled SQL")
    found = derive(
        manifest,
        names,
        catalog=catalog,
        known=lambda assets: _held_columns(store, assets),
        previous=lambda assets: _previous(store, assets),
        workers=workers,
        ahead=ahead,
    )
    for edge in batch.edges:
        edge.columns = found.edges.get((edge.upstream, edge.downstream), edge.columns)
    # A manifest without a model's compiled SQL (`dbt test`, `dbt seed`) says nothing new about
    # its columns: what an earlier import derived stays, fingerprint included. (Its edges keep
    # their stored mappings: an edge written without one does not clear it.)
    silent = [
        a.name
        for a in batch.assets
        if a.name not in found.fingerprints and a.name not in found.unresolved
    ]
    earlier = _kept_tags(store, silent) if silent else {}
    for asset in batch.assets:
        for key, value in earlier.get(asset.name, {}).items():
            asset.tags.setdefault(key, value)
    for asset in batch.assets:
        if asset.name in found.fingerprints:
            outputs = json.dumps(found.outputs.get(asset.name, []), separators=(",", ":"))
            if len(outputs) <= _MAX_OUTPUTS_CHARS:
                asset.tags[FINGERPRINT_TAG] = found.fingerprints[asset.name]
                asset.tags[OUTPUTS_TAG] = outputs
        if asset.name in found.unresolved:
            asset.tags[COLUMN_LINEAGE_TAG] = "unresolved"
            asset.tags[COLUMN_LINEAGE_TAG + "_reason"] = found.unresolved[asset.name]
        elif asset.name in found.outputs:
            asset.tags[COLUMN_LINEAGE_TAG] = "resolved"
    if found.reused:
        say(f"Column lineage of {len(found.reused)} unchanged models re-used")
    if found.unresolved:
        say(f"Column lineage unresolved for {len(found.unresolved)} of the compiled models")
    return found.unresolved


def _held_columns(store: Store, assets: list[str]) -> dict[str, list[list[str]]]:
    """The column lists of each asset's schema snapshots in the store, newest first."""
    import sqlalchemy as sa

    from lakelens.store import schema

    snapshots = schema.schema_snapshots
    held: dict[str, list[list[str]]] = {}
    with store.connect() as conn:
        for start in range(0, len(assets), 500):
            rows = conn.execute(
                sa.select(snapshots.c.asset, snapshots.c.columns)
                .where(snapshots.c.asset.in_(assets[start : start + 500]))
                .order_by(snapshots.c.time.desc(), snapshots.c.id.desc())
            )
            for asset, columns in rows:
                held.setdefault(asset, []).append([str(c[0]) for c in json.loads(columns) if c])
    return held


def _kept_tags(store: Store, assets: list[str]) -> dict[str, dict[str, str]]:
    """The column-lineage tags (status, reason, fingerprint, outputs) the store holds."""
    import sqlalchemy as sa

    from lakelens.store import schema

    table = schema.assets
    kept: dict[str, dict[str, str]] = {}
    with store.connect() as conn:
        for start in range(0, len(assets), 500):
            for name, tags in conn.execute(
                sa.select(table.c.name, table.c.tags).where(
                    table.c.name.in_(assets[start : start + 500])
                )
            ):
                loaded = json.loads(tags) if tags else {}
                if isinstance(loaded, dict):
                    ours = {
                        k: str(v) for k, v in loaded.items() if k.startswith(COLUMN_LINEAGE_TAG)
                    }
                    if ours:
                        kept[name] = ours
    return kept


def _previous(store: Store, assets: list[str]) -> dict[str, Previous]:
    """The lineage earlier imports derived for these assets, with its fingerprint."""
    import sqlalchemy as sa

    from lakelens.store import schema

    kept = {
        name: tags for name, tags in _kept_tags(store, assets).items() if FINGERPRINT_TAG in tags
    }
    edges = schema.lineage_edges
    mappings: dict[str, dict[str, dict[str, list[str]]]] = {}
    names = list(kept)
    with store.connect() as conn:
        for start in range(0, len(names), 500):
            for upstream, downstream, columns in conn.execute(
                sa.select(edges.c.upstream, edges.c.downstream, edges.c.columns).where(
                    edges.c.downstream.in_(names[start : start + 500]),
                    edges.c.source == "dbt",
                    edges.c.columns.is_not(None),
                )
            ):
                mappings.setdefault(downstream, {})[upstream] = json.loads(columns)
    found: dict[str, Previous] = {}
    for name, tags in kept.items():
        try:
            outputs = [str(c) for c in json.loads(tags.get(OUTPUTS_TAG) or "")]
        except (TypeError, ValueError):
            continue
        unresolved = tags.get(COLUMN_LINEAGE_TAG) == "unresolved"
        found[name] = Previous(
            fingerprint=tags[FINGERPRINT_TAG],
            outputs=outputs,
            unresolved=tags.get(COLUMN_LINEAGE_TAG + "_reason", "") if unresolved else None,
            edges=mappings.get(name, {}),
        )
    return found


def dialect_of(adapter_type: object) -> str | None:
    """The sqlglot dialect of a dbt adapter (None: sqlglot's generic dialect)."""
    from sqlglot.dialects.dialect import Dialect

    if not isinstance(adapter_type, str) or not adapter_type:
        return None
    name = _DIALECTS.get(adapter_type, adapter_type)
    return name if Dialect.get(name) is not None else None


def derive(
    manifest: Mapping[str, Any],
    names: Mapping[str, str],
    *,
    catalog: Mapping[str, Any] | None = None,
    known: Callable[[list[str]], dict[str, list[list[str]]]] | None = None,
    previous: Callable[[list[str]], dict[str, Previous]] | None = None,
    workers: int | None = 1,
    ahead: Ahead | None = None,
    report: Callable[[Task, Outcome], None] | None = None,
    fork: bool = False,
) -> ColumnLineage:
    """Column lineage of every compiled model and snapshot in `manifest`.

    `names` maps dbt unique ids to asset names; `known(asset names)` returns the column lists
    lakelens already holds for the assets asked about (used when dbt documents none);
    `previous(asset names)` what earlier imports derived, re-used where the fingerprint of a
    model's SQL and its parents' columns is unchanged. `workers`: processes that derive in
    parallel (None: one per core, once there are enough models to pay for their start-up);
    `ahead`: a head start whose results are taken where its task was the same; `report` hears
    each task derived and its outcome; `fork`: fork the workers (only a single-threaded
    process with sqlglot loaded may).
    """
    from sqlglot import exp

    nodes = _relations(manifest)
    result = ColumnLineage(dialect_of(_dict(manifest.get("metadata")).get("adapter_type")))
    tables: dict[str, exp.Table] = {}
    by_key: dict[tuple[str, ...], str] = {}
    for uid, node in nodes.items():
        table = _table(node.get("relation_name"), result.dialect)
        if table is not None and uid in names:
            tables[uid] = table
            by_key[_key(table)] = uid
    columns, documented = _starting_columns(nodes, catalog, names, tables, known)
    compiled = {
        uid: sql
        for uid in nodes
        if isinstance(sql := nodes[uid].get("compiled_code") or nodes[uid].get("compiled_sql"), str)
        and uid in names
        and uid in tables
    }
    earlier = previous([names[uid] for uid in compiled]) if previous and compiled else {}
    parents = {
        uid: [d for d in _list(_dict(nodes[uid].get("depends_on")).get("nodes")) if d in tables]
        for uid in compiled
    }

    def start(uid: str) -> Task | None:
        """Re-use what an earlier import derived, or say what to derive (parents are done)."""
        sql, asset = compiled[uid], names[uid]
        fingerprint = _fingerprint(sql, uid, parents, tables, names, columns, documented, result)
        result.fingerprints[asset] = fingerprint
        before = earlier.get(asset)
        if before is None or before.fingerprint != fingerprint:
            return Task(
                uid,
                sql,
                result.dialect,
                [
                    (d, _key(tables[d]), columns.get(d), documented.get(d), _name(nodes[d], d))
                    for d in parents[uid]
                ],
            )
        result.reused.add(asset)
        if before.unresolved is not None:
            result.unresolved[asset] = before.unresolved
            return None
        columns[uid] = result.outputs[asset] = before.outputs
        upstream = {names[d] for d in parents[uid]}
        for name, per_column in before.edges.items():
            if name in upstream:  # an edge of an older manifest may linger in the store
                result.edges[(name, asset)] = per_column
        return None

    def finish(task: Task, outcome: Outcome) -> None:
        if report is not None:
            report(task, outcome)
        uid = task.uid
        asset = names[uid]
        if outcome[0] == "unresolved":
            result.unresolved[asset] = str(outcome[1])[:_MAX_REASON]
            return
        traced = outcome[1]
        columns[uid] = result.outputs[asset] = list(traced)
        for upstream_uid, per_column in _mapping(traced, by_key).items():
            if upstream_uid != uid:
                result.edges[(names[upstream_uid], asset)] = per_column

    if ahead is not None and len(earlier) * 2 >= len(compiled):
        ahead.close()  # most models are re-used: its work is not needed
    order = _upstream_first(nodes)
    schedule(compiled, parents, order, start, finish, workers, ahead=ahead, fork=fork)
    if ahead is not None:
        ahead.close(wait=0.25)  # it has sent all it had: let it reap its helpers and end
    return result


def derive_one(task: Task, own: bool = True) -> Outcome:
    """("ok", {output column: [(table key, column)]}, None) or ("unresolved", why, None).

    Tables are named by key, not uid: the one who asked maps them to its relations. `own`:
    try lakelens' own resolver before sqlglot's `qualify` (False: `qualify` alone)."""
    try:
        traced = _lineage(task) if own else _lineage(task, own=False)
    except _Unresolved as exc:
        return ("unresolved", str(exc), None)
    except Exception as exc:  # sqlglot raises many kinds; none may fail an import
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return ("unresolved", f"sqlglot: {reason}", None)
    return ("ok", traced, None)


def _name(node: Mapping[str, Any], uid: str) -> str:
    return str(node.get("name") or uid)


def _fingerprint(
    sql: str,
    uid: str,
    parents: Mapping[str, list[str]],
    tables: Mapping[str, Any],
    names: Mapping[str, str],
    columns: Mapping[str, list[str]],
    documented: Mapping[str, list[str]],
    result: ColumnLineage,
) -> str:
    """A digest of everything `_lineage` reads for one model."""
    read = [
        [names.get(d), _key(tables[d]), columns.get(d), None if d in columns else documented.get(d)]
        for d in parents[uid]
    ]
    text = json.dumps([_CACHE_VERSION, result.dialect, sql, read], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class _Unresolved(Exception):
    """A model whose column lineage cannot be derived; the message says why."""


def _lineage(task: Task, own: bool = True) -> dict[str, list[tuple[tuple[str, ...], str]]]:
    """{output column: [(table key, column)]} of one model, its columns in select order."""
    import sqlglot
    from sqlglot import exp

    from lakelens.integrations.dbt_column_resolve import Fallback, resolve

    sql, dialect = task.sql, task.dialect
    parsed = sqlglot.parse(sql, dialect=dialect)
    statements = [s for s in parsed if s is not None]
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise _Unresolved("the compiled SQL is not a single query")
    query = statements[0]
    missing = sorted(name for _, _, known_columns, _, name in task.parents if known_columns is None)
    if missing and any(not isinstance(s.parent, exp.Count) for s in query.find_all(exp.Star)):
        raise _Unresolved(
            f"select * over relations whose columns are unknown ({', '.join(missing)}): "
            "run `dbt docs generate` so catalog.json lists them"
        )
    if own:
        known = {key: cols if cols is not None else doc for _, key, cols, doc, _ in task.parents}
        try:
            return resolve(query, known, dialect)
        except Fallback:
            pass  # qualify decides
    exact: dict[str, Any] = {}
    helped: dict[str, Any] = {}
    for _uid, key, known_columns, documented, _name in task.parents:
        if known_columns is not None:
            _nest(exact, key, known_columns)
            _nest(helped, key, known_columns)
        elif documented:
            _nest(helped, key, documented)
    # Qualified in place (copying the tree costs a fifth of the time).
    try:
        traced = _qualified_trace(query, helped, dialect)
    except Exception:
        if helped == exact:
            raise
        # A documented column list left out a column the SQL names: qualify without it.
        query = sqlglot.parse_one(sql, dialect=dialect)  # type: ignore[assignment]
        traced = _qualified_trace(query, exact, dialect)
    if "*" in traced:
        raise _Unresolved("select * could not be expanded")
    return {
        output: [(_key(source), column) for source, column in sources if column != "*"]
        for output, sources in traced.items()
    }


def _mapping(
    traced: Mapping[str, list[tuple[tuple[str, ...], str]]], by_key: Mapping[tuple[str, ...], str]
) -> dict[str, dict[str, list[str]]]:
    """{upstream uid: {output column: [upstream columns]}} of a model's traced columns."""
    mapping: dict[str, dict[str, list[str]]] = {}
    for output, sources in traced.items():
        for key, column in sources:
            upstream = by_key.get(key) or _by_suffix(by_key, key)
            if upstream is None:
                continue
            targets = mapping.setdefault(upstream, {}).setdefault(output, [])
            if column not in targets:
                targets.append(column)
    return mapping


def _qualified_trace(
    query: Any, schema: dict[str, Any], dialect: str | None
) -> dict[str, list[Any]]:
    """{output column: [(source table, column)]} of a parsed query, qualified in place.

    The common shapes (selects, CTEs, derived tables, joins, set operations, scalar
    subqueries) are followed here over sqlglot's scopes; a query with a pivot or a table
    function goes through `sqlglot.lineage`, which covers them at three times the cost.
    """
    from sqlglot.optimizer.qualify import qualify
    from sqlglot.optimizer.scope import build_scope

    # As `sqlglot.lineage` qualifies, without quoting (only names are read back) or validation
    # (a column no schema knows still has a lineage up to its query).
    qualify(
        query,
        schema=schema,
        dialect=dialect,
        validate_qualify_columns=False,
        identify=False,
        quote_identifiers=False,
    )
    root = build_scope(query)
    if root is None:
        raise _Unresolved("the compiled SQL is not a query")
    if any(scope.pivots or scope.udtfs for scope in root.traverse()):
        return _sqlglot_trace(root, query, schema, dialect)
    walk = _Walk()
    return {name: walk.column(root, name) for name in dict.fromkeys(query.named_selects)}


class _Walk:
    """Follows output columns down through scopes to the tables they read, memoized per scope."""

    def __init__(self) -> None:
        self._seen: dict[tuple[int, str | int], list[Any]] = {}

    def column(self, scope: Any, column: str | int) -> list[Any]:
        key = (id(scope), column)
        if key not in self._seen:
            self._seen[key] = []  # a cycle (a recursive CTE) ends here
            self._seen[key] = self._column(scope, column)
        return self._seen[key]

    def _column(self, scope: Any, column: str | int) -> list[Any]:
        from sqlglot import exp

        query = scope.expression
        if isinstance(query, exp.Subquery):
            return [s for inner in scope.subquery_scopes for s in self.column(inner, column)]
        selects = query.selects
        if isinstance(query, exp.SetOperation):
            index = column if isinstance(column, int) else _position(selects, column)
            return [s for branch in scope.set_operation_scopes for s in self.column(branch, index)]
        if isinstance(column, int):
            select = selects[column] if column < len(selects) else None
        else:
            select = next((s for s in selects if s.alias_or_name == column), None)
        if select is None:
            return []
        return self.sources(scope, select)

    def sources(self, scope: Any, select: Any) -> list[Any]:
        """The (table, column) pairs one projection of `scope` reads."""
        from sqlglot import exp
        from sqlglot.optimizer.scope import find_all_in_scope

        if isinstance(select, exp.Star):
            return [
                (source, "*") for source in scope.sources.values() if isinstance(source, exp.Table)
            ]
        found: list[Any] = []
        inner = {id(s.expression): s for s in scope.subquery_scopes}
        for subquery in find_all_in_scope(select, *exp.UNWRAPPED_QUERIES):
            sub = inner.get(id(subquery))
            if sub is not None:
                for name in subquery.named_selects:
                    found.extend(self.column(sub, name))
        for col in find_all_in_scope(select, exp.Column):
            table = col.table
            source = scope.sources.get(table)
            if source is None and not table:
                named = [v for k, v in scope.sources.items() if k]
                source = named[0] if len(named) == 1 else None
            if isinstance(source, exp.Table):
                found.append((source, col.name))
            elif source is not None:
                found.extend(self.column(source, col.name))
        return found


def _position(selects: list[Any], column: str) -> int:
    for i, select in enumerate(selects):
        if select.alias_or_name == column or select.is_star:
            return i
    raise _Unresolved(f"set operation without column {column}")


def _sqlglot_trace(
    root: Any, query: Any, schema: dict[str, Any], dialect: str | None
) -> dict[str, list[Any]]:
    """The same answer as `_qualified_trace`, from `sqlglot.lineage` (pivots, table functions)."""
    from sqlglot import exp
    from sqlglot.lineage import lineage

    found = lineage(None, query, schema, dialect=dialect, scope=root, trim_selects=False)
    traced: dict[str, list[Any]] = {}
    for output, node in found.items():
        pairs = traced.setdefault(output, [])
        for step in node.walk():
            if isinstance(step.expression, exp.Table):
                pairs.append((step.expression, step.name.split(".", 1)[-1]))
    return traced


def _relations(manifest: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    nodes = {
        uid: node
        for uid, node in _dict(manifest.get("nodes")).items()
        if isinstance(node, dict) and node.get("resource_type") in ("model", "seed", "snapshot")
    }
    nodes.update(
        (uid, node)
        for uid, node in _dict(manifest.get("sources")).items()
        if isinstance(node, dict)
    )
    return nodes


def _starting_columns(
    nodes: Mapping[str, dict[str, Any]],
    catalog: Mapping[str, Any] | None,
    names: Mapping[str, str],
    tables: Mapping[str, Any],
    known: Callable[[list[str]], dict[str, list[list[str]]]] | None,
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(uid → columns from catalog.json or the store, uid → columns documented in the manifest)."""
    from_catalog: dict[str, list[str]] = {}
    for key in ("nodes", "sources"):
        for uid, entry in _dict(_dict(catalog).get(key)).items():
            cols = _dict(_dict(entry).get("columns"))
            ordered = sorted(cols.values(), key=lambda c: _dict(c).get("index") or 0)
            from_catalog[uid] = [str(_dict(c).get("name")) for c in ordered if _dict(c).get("name")]
    columns: dict[str, list[str]] = {}
    documented: dict[str, list[str]] = {}
    for uid, node in nodes.items():
        if uid not in tables:
            continue
        if from_catalog.get(uid):
            columns[uid] = from_catalog[uid]
        listed = [
            str(c.get("name") or key)
            for key, c in _dict(node.get("columns")).items()
            if isinstance(c, dict)
        ]
        if listed:
            documented[uid] = listed
    # Compiled models get exact columns when derived; the store is asked about the others.
    wanted = [
        uid
        for uid in tables
        if uid not in columns
        and not (nodes[uid].get("compiled_code") or nodes[uid].get("compiled_sql"))
    ]
    if known is not None and wanted:
        held = known([names[uid] for uid in wanted])
        for uid in wanted:
            # dbt's own import stores the documented columns as a snapshot; documentation may
            # leave columns out, so only a snapshot that lists something else is the schema.
            observed = [c for c in held.get(names[uid], []) if c and c != documented.get(uid)]
            if observed:
                columns[uid] = observed[0]
    return columns, documented


def _upstream_first(nodes: Mapping[str, dict[str, Any]]) -> list[str]:
    """Node ids ordered so a node comes after everything it depends on (cycles last)."""
    parents = {
        uid: [d for d in _list(_dict(node.get("depends_on")).get("nodes")) if d in nodes]
        for uid, node in nodes.items()
    }
    children: dict[str, list[str]] = {}
    for uid, ups in parents.items():
        for up in ups:
            children.setdefault(up, []).append(uid)
    waiting = {uid: len(set(ups)) for uid, ups in parents.items()}
    ready = sorted(uid for uid, count in waiting.items() if count == 0)
    order: list[str] = []
    while ready:
        uid = ready.pop()
        order.append(uid)
        for child in set(children.get(uid, [])):
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    placed = set(order)
    return order + sorted(uid for uid in nodes if uid not in placed)


def _table(relation: object, dialect: str | None) -> Any:
    """The relation name as a normalized sqlglot table, or None when it is no table name."""
    from sqlglot import exp
    from sqlglot.errors import SqlglotError
    from sqlglot.optimizer.normalize_identifiers import normalize_identifiers

    if not isinstance(relation, str) or not relation.strip():
        return None
    try:
        table = exp.to_table(relation, dialect=dialect)
    except (SqlglotError, ValueError):
        return None
    return normalize_identifiers(table, dialect=dialect)


def _key(table: Any) -> tuple[str, ...]:
    return tuple(part for part in (table.catalog, table.db, table.name) if part)


def _by_suffix(by_key: Mapping[tuple[str, ...], str], key: tuple[str, ...]) -> str | None:
    """The one relation whose name ends with `key` (SQL may name a table without its database)."""
    found = {uid for full, uid in by_key.items() if full[-len(key) :] == key}
    return found.pop() if len(found) == 1 else None


def _nest(schema: dict[str, Any], key: tuple[str, ...], columns: list[str]) -> None:
    """Add a table to a sqlglot mapping schema ({catalog: {db: {table: {column: type}}}})."""
    level = schema
    for part in key[:-1]:
        level = level.setdefault(part, {})
    level[key[-1]] = {column: "UNKNOWN" for column in columns}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
