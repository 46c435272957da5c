"""lakelens' own column resolver for the common shapes of a dbt model's SQL.

sqlglot's `qualify` rewrites a whole parsed query (normalizing every identifier, qualifying
every column, expanding stars, aliasing outputs) before `dbt_columns` follows output columns
through its scopes; that costs about as much as parsing. For the shapes most models take
(selects, aliases, CTEs, derived tables, joins on conditions or `using` columns, `*` and
`t.*` over known columns, set operations, scalar subqueries) this module reads the parsed
query as it is and finds, for each output column, the (table key, column) pairs `qualify`
and the scope walk would have found, in the same order.

It answers only where it is certain to give the same answer. Anything else raises
`Fallback`, and the caller takes the `qualify` path: a dialect whose identifiers are not
plainly case-insensitive or which expands aliases early, an identifier that is not lower
case, an unqualified column that no single source owns (or that an outer query might), a
column its source does not list, an unqualified `using` column or a star over a `using`
join, natural joins, pivots, table functions, lateral, unnest, lambdas, struct fields,
`values`, recursive CTEs, column aliases on a CTE or a derived table, star modifiers,
duplicate output names, a positional reference out of range, a set operation's `order by`,
an output alias named in `having` or `qualify`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlglot import exp
from sqlglot.optimizer.scope import walk_in_scope

__all__ = ["Fallback", "resolve"]

# (table key, column) pairs per output column, in select order.
Traced = dict[str, list[tuple[tuple[str, ...], str]]]
_Outputs = list[tuple[str, list[tuple[tuple[str, ...], str]]]]

# Dialects checked against `qualify` shape by shape (tests/integrations/
# test_dbt_column_resolve.py); others fall back.
_DIALECTS = frozenset(
    {None, "duckdb", "postgres", "redshift", "trino", "presto", "spark", "databricks", "sqlite"}
)
_SELECT_ARGS = frozenset(
    {"with_", "expressions", "distinct", "from_", "joins", "where", "group", "having"}
    | {"qualify", "order", "limit", "offset"}
)
_SET_ARGS = frozenset({"with_", "this", "expression", "distinct", "limit", "offset"})
_JOIN_KINDS = frozenset({"", "INNER", "OUTER", "CROSS"})
_JOIN_ARGS = frozenset({"this", "on", "side", "kind", "using"})
# The parts of a select other than its projections and CTEs, walked for their columns.
_CLAUSES = (
    *("from_", "joins", "distinct", "where", "group", "having", "qualify", "order"),
    *("limit", "offset"),
)
_UNWRAPPED = exp.UNWRAPPED_QUERIES


class Fallback(Exception):
    """A query this resolver cannot answer with certainty: take the `qualify` path."""


def resolve(
    query: Any, known: dict[tuple[str, ...], list[str] | None], dialect: str | None
) -> Traced:
    """{output column: [(table key, column)]} of a parsed query, as `qualify` + the scope walk
    give it. `known` holds each relation the model may read, by table key, with the columns
    the `qualify` path's schema gives it (None: no columns known)."""
    if dialect not in _DIALECTS:
        raise Fallback(f"dialect {dialect}")
    depth = {len(key) for key in known}
    if len(depth) > 1:
        raise Fallback("table keys of several lengths")
    for key, columns in known.items():
        if not all(_plain(part, dialect) for part in key):
            raise Fallback("a table name that is not plain")
        if columns is not None and (
            len(set(columns)) != len(columns) or not all(_plain(c, dialect) for c in columns)
        ):
            raise Fallback("a column name that is not plain, or listed twice")
    outputs = _Resolver(known).query(query, {}, None)
    return dict(outputs)


@lru_cache(maxsize=4096)
def _plain(name: str, dialect: str | None) -> bool:
    """Whether sqlglot's schema keeps this name as it is (a lower-case identifier)."""
    from sqlglot.schema import normalize_name

    if not name or name != name.lower():
        return False
    try:
        return normalize_name(name, dialect=dialect).name == name
    except Exception:  # a name sqlglot cannot read as an identifier
        return False


# Nodes whose meaning `qualify` decides in ways this module does not.
_REFUSED = (
    *(exp.Lambda, exp.Dot, exp.Pivot, exp.UDTF, exp.Values, exp.Parameter, exp.Placeholder),
    *(exp.Aliases, exp.MatchRecognize, exp.Connect, exp.QueryTransform),
)


def _lower(name: Any) -> str:
    """The name, when it is a lower-case identifier (`normalize_identifiers` keeps it)."""
    if not isinstance(name, str) or not name or name != name.lower():
        raise Fallback("an identifier that is not lower case")
    return name


class _Source:
    """A relation a select reads: a table of the project, or a CTE or derived table."""

    __slots__ = ("columns", "key", "names", "outputs")

    def __init__(
        self, key: tuple[str, ...] | None, columns: list[str] | None, outputs: _Outputs | None
    ) -> None:
        self.key = key
        self.outputs = dict(outputs) if outputs is not None else None
        # None: unknown (a relation no schema lists is read as `qualify` reads it: no columns)
        self.columns = list(self.outputs) if self.outputs is not None else columns
        self.names = frozenset(self.columns or ())

    def pairs(self, column: str) -> list[tuple[tuple[str, ...], str]]:
        if self.outputs is not None:
            return list(self.outputs.get(column, []))
        assert self.key is not None
        return [(self.key, column)]


# A select's CTEs, sources, column owners and the sources of the query just outside it.
_Scope = tuple[
    dict[str, _Outputs], dict[str, _Source], dict[str, str | None], dict[str, _Source] | None
]


class _Resolver:
    def __init__(self, known: dict[tuple[str, ...], list[str] | None]) -> None:
        self.known = known
        self.ctes: dict[str, _Outputs] = {}  # every CTE name seen, for correlated references

    def query(
        self, node: Any, ctes: dict[str, _Outputs], outer: dict[str, _Source] | None
    ) -> _Outputs:
        """The output columns of a query with the pairs each reads."""
        while isinstance(node, exp.Subquery):
            if any(v for k, v in node.args.items() if k not in ("this", "alias")):
                raise Fallback("a parenthesized query with clauses")
            node = node.this
        if isinstance(node, exp.Select):
            ctes = self.with_(node, ctes)
            self.ctes.update(ctes)
            return self.select(node, ctes, outer)
        if isinstance(node, exp.SetOperation):
            if any(v for k, v in node.args.items() if k not in _SET_ARGS):
                raise Fallback("a set operation with clauses")
            ctes = self.with_(node, ctes)
            left = self.query(node.this, ctes, outer)
            right = self.query(node.expression, ctes, outer)
            if len(left) != len(right):
                raise Fallback("set operation branches of different widths")
            return [(name, [*pairs, *r]) for (name, pairs), (_, r) in zip(left, right, strict=True)]
        raise Fallback(f"a {type(node).__name__} query")

    def with_(self, node: Any, ctes: dict[str, _Outputs]) -> dict[str, _Outputs]:
        with_ = node.args.get("with_")
        if not with_:
            return ctes
        if any(v for k, v in with_.args.items() if k != "expressions"):
            raise Fallback("a recursive CTE")
        ctes = dict(ctes)
        defined: set[str] = set()
        for cte in with_.expressions:
            alias = cte.args.get("alias")
            if any(v for k, v in cte.args.items() if k not in ("this", "alias")) or (
                alias is None or alias.args.get("columns")
            ):
                raise Fallback("a CTE with column aliases or options")
            name = _lower(alias.name)
            if name in defined:
                raise Fallback("a CTE defined twice")
            defined.add(name)
            ctes[name] = self.query(cte.this, ctes, None)
        return ctes

    def sources(self, node: Any, ctes: dict[str, _Outputs]) -> tuple[dict[str, _Source], set[str]]:
        """The relations a select reads, by the name its columns use, in from/join order, and
        the columns its `using` joins name."""
        found: dict[str, _Source] = {}
        using: set[str] = set()
        from_ = node.args.get("from_")
        if from_ is None:
            if node.args.get("joins"):
                raise Fallback("joins without from")
            return found, using
        relations = [(from_.this, None)]
        for join in node.args.get("joins") or []:
            if any(v for k, v in join.args.items() if k not in _JOIN_ARGS):
                raise Fallback("a join with options")
            if (join.args.get("kind") or "").upper() not in _JOIN_KINDS:
                raise Fallback("a semi or anti join")
            relations.append((join.this, join.args.get("using")))
        for relation, joined_on in relations:
            name, source = self.source(relation, ctes)
            if name in found:
                raise Fallback(f"two sources named {name}")
            if joined_on:
                using.update(_using(joined_on, found, source))
            found[name] = source
        return found, using

    def source(self, relation: Any, ctes: dict[str, _Outputs]) -> tuple[str, _Source]:
        """One relation of a `from` or a join, with the name its columns use."""
        alias = relation.args.get("alias")
        if alias is not None and (alias.args.get("columns") or not alias.name):
            raise Fallback("a relation with column aliases")
        if isinstance(relation, exp.Table):
            if any(
                v for k, v in relation.args.items() if k not in ("this", "db", "catalog", "alias")
            ) or not isinstance(relation.this, exp.Identifier):
                raise Fallback("a table with options")
            if not relation.args.get("db") and relation.name in ctes:
                return relation.alias_or_name, _Source(None, None, ctes[relation.name])
            key = tuple(p for p in (relation.catalog, relation.db, relation.name) if p)
            if key not in self.known:
                raise Fallback(f"a table the model does not depend on: {'.'.join(key)}")
            return relation.alias_or_name, _Source(key, self.known[key], None)
        if isinstance(relation, exp.Subquery):
            if alias is None or any(
                v for k, v in relation.args.items() if k not in ("this", "alias")
            ):
                raise Fallback("a derived table without alias, or with clauses")
            return _lower(alias.name), _Source(None, None, self.query(relation.this, ctes, None))
        raise Fallback(f"a {type(relation).__name__} source")

    def select(
        self, node: Any, ctes: dict[str, _Outputs], outer: dict[str, _Source] | None
    ) -> _Outputs:
        if any(v for k, v in node.args.items() if k not in _SELECT_ARGS):
            raise Fallback("a select with clauses")
        sources, using = self.sources(node, ctes)
        owners = _owners(sources)
        for name in using:
            # `qualify` reads an unqualified `using` column as coalesce() of the relations that
            # list it: left to it, as the star expansion of such a select is.
            owners[name] = None
        scope = (ctes, sources, owners, outer)
        _check_alias_references(node)
        # Every column of this scope is checked, not only the projections': a column `qualify`
        # cannot place makes it fail or guess, and the answer must be the `qualify` path's.
        for key in _CLAUSES:
            for clause in _each(node.args.get(key)):
                self.read(clause, scope, False)
        outputs: _Outputs = []
        for i, projection in enumerate(node.expressions):
            if using and (
                isinstance(projection, exp.Star)
                or (isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star))
            ):
                raise Fallback("a star over a using join")
            if isinstance(projection, exp.Star):
                if any(projection.args.values()):
                    raise Fallback("a star with modifiers")
                for source in sources.values():
                    outputs.extend((c, source.pairs(c)) for c in _columns(source))
                continue
            if isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
                starred = sources.get(projection.table)
                if starred is None or projection.args.get("db"):
                    raise Fallback("a star of an unknown source")
                outputs.extend((c, starred.pairs(c)) for c in _columns(starred))
                continue
            if isinstance(projection, exp.Subquery) and not projection.alias:
                raise Fallback("an unnamed subquery projection")
            if isinstance(projection, exp.Alias):
                name = projection.alias
            else:
                name = projection.output_name or f"_col_{i}"
            if not name or name != name.lower():
                raise Fallback("an output name that is not lower case")
            outputs.append((name, self.read(projection, scope, True)))
        names = [name for name, _ in outputs]
        if len(set(names)) != len(names):
            raise Fallback("an output name given twice")
        _check_positions(node, len(outputs))
        return outputs

    def read(self, root: Any, scope: _Scope, projected: bool) -> list[tuple[tuple[str, ...], str]]:
        """The pairs an expression of a select reads: its subqueries' outputs first, then its
        columns, each in the order the scope walk meets them."""
        ctes, sources, owners, outer = scope
        pairs: list[tuple[tuple[str, ...], str]] = []
        columns: list[tuple[tuple[str, ...], str]] = []
        for item in walk_in_scope(root):
            kind = type(item)
            if kind is exp.Identifier:
                _lower(item.this)
            elif kind is exp.Column:
                columns.extend(self.column(item, sources, owners, outer, projected))
            elif isinstance(item, _UNWRAPPED):
                if item is not root:
                    for _, read in self.query(item, ctes, sources):
                        pairs.extend(read)
            elif isinstance(item, _REFUSED):
                raise Fallback(kind.__name__)
            elif kind is exp.Star and (
                any(item.args.values()) or not isinstance(item.parent, (exp.Count, exp.Column))
            ):
                raise Fallback("a star with modifiers, or outside the projections")
        pairs.extend(columns)
        return pairs

    def column(
        self,
        col: Any,
        sources: dict[str, _Source],
        owners: dict[str, str | None],
        outer: dict[str, _Source] | None,
        projected: bool,
    ) -> list[tuple[tuple[str, ...], str]]:
        """The pairs one column reads; falls back where `qualify` might read it otherwise."""
        this, args = col.this, col.args
        if type(this) is not exp.Identifier:
            if (
                not isinstance(this, exp.Star)
                or not projected
                or type(col.parent) is not exp.Select
            ):
                raise Fallback("a column that is no name, or a table star outside the projections")
            return []  # expanded with the projections
        if args.get("db") or args.get("catalog") or args.get("join_mark"):
            raise Fallback("a column with more than a table")
        name, table = this.this, col.table
        if table:
            source = sources.get(table)
            if source is None:
                # A correlated reference to the query just outside: read by no projection here.
                if projected or outer is None or table not in outer or table in self.ctes:
                    raise Fallback(f"column {table}.{name} of no source here")
                if outer[table].names and name not in outer[table].names:
                    raise Fallback(f"column {name} not listed by its source")  # qualify raises
                return []
        else:
            owner = owners.get(name)
            if owner is None:
                raise Fallback(f"column {name} of no single source")
            source = sources[owner]
        if source.names and name not in source.names:
            raise Fallback(f"column {name} not listed by its source")
        return source.pairs(name)


def _using(identifiers: list[Any], left: dict[str, _Source], joined: _Source) -> list[str]:
    """The columns of a `using` join, each listed by the joined relation and one to its left
    (else `qualify` cannot join them automatically and raises, or joins unknown columns)."""
    names = []
    for identifier in identifiers:
        if type(identifier) is not exp.Identifier:
            raise Fallback("a using join on something else than names")
        name = _lower(identifier.this)
        if name not in joined.names or not any(name in s.names for s in left.values()):
            raise Fallback(f"a using column {name} a relation does not list")
        names.append(name)
    if not joined.names or not all(s.names for s in left.values()):
        raise Fallback("a using join over a relation whose columns are unknown")
    return names


def _owners(sources: dict[str, _Source]) -> dict[str, str | None]:
    """Column name → the one source listing it (None: several do), as `qualify` reads them."""
    owners: dict[str, str | None] = {}
    for name, source in sources.items():
        for column in source.names:
            owners[column] = None if column in owners else name
    return owners


def _columns(source: _Source) -> list[str]:
    if source.outputs is not None:
        return list(source.outputs)
    if not source.columns:
        raise Fallback("a star over a relation whose columns are unknown")
    return source.columns


def _check_alias_references(node: Any) -> None:
    """An unqualified name in `having` or `qualify` that is also an output alias: `qualify`
    reads it as the alias's expression, or raises when a relation's columns are unknown."""
    aliases = {p.alias for p in node.expressions if isinstance(p, exp.Alias)}
    for key in ("having", "qualify"):
        clause = node.args.get(key)
        for item in walk_in_scope(clause) if clause is not None and aliases else ():
            if type(item) is exp.Column and not item.table and item.name in aliases:
                raise Fallback(f"{key} names the output alias {item.name}")


def _check_positions(node: Any, width: int) -> None:
    """`group by 3` and `order by 3` must name a projection, or `qualify` raises."""
    for clause in (node.args.get("group"), node.args.get("order")):
        for item in clause.expressions if clause else []:
            item = item.this if isinstance(item, exp.Ordered) else item
            if (
                isinstance(item, exp.Literal)
                and not item.is_string
                and (not item.is_int or not 1 <= int(item.this) <= width)
            ):
                raise Fallback("a position out of range")


def _each(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
