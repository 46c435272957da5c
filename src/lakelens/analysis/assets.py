"""Assets: the catalog behind `lakelens assets` and /assets, and lookup by name with
'did you mean' for typos."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakelens.analysis._db import Reader, borrow
from lakelens.errors import InvalidArgumentError, LakelensError

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = [
    "ASSET_STATUSES",
    "AssetFilter",
    "AssetListing",
    "AssetPage",
    "UnknownAssetError",
    "asset_names",
    "catalog_details",
    "list_assets",
    "resolve_asset",
]


class UnknownAssetError(LakelensError):
    """The name matches no recorded asset."""


def asset_names(conn: Reader | sa.Connection) -> list[str]:
    """Every asset the store knows of (the registry includes lineage-only names)."""
    return borrow(conn).column("SELECT name FROM assets ORDER BY name")


def resolve_asset(conn: Reader | sa.Connection, name: str) -> str:
    """`name` itself when recorded, the asset it is an alias of; otherwise UnknownAssetError with the closest names."""
    db = borrow(conn)
    if db.row("SELECT name FROM assets WHERE name = :name", {"name": name}):
        return name
    # Another name of a recorded asset: a dbt relation, an OpenLineage dataset, a Dagster key.
    alias = db.row("SELECT asset FROM asset_aliases WHERE alias = :name", {"name": name})
    if alias and db.row("SELECT name FROM assets WHERE name = :name", {"name": alias[0]}):
        return str(alias[0])
    names = asset_names(db)
    if not names:
        raise UnknownAssetError(
            f"Unknown asset {name!r}: no assets are recorded yet — try `lakelens demo`."
        )
    scored = sorted(
        ((difflib.SequenceMatcher(None, name, n).ratio(), n) for n in names),
        key=lambda item: (-item[0], item[1]),
    )
    # The best match, and a runner-up only when it is about as close.
    close = [n for score, n in scored[:2] if score >= 0.6 and score >= scored[0][0] - 0.05]
    if not close:
        lowered = name.lower()
        close = [n for n in names if lowered in n.lower()][:3]
    if close:
        options = " or ".join(repr(c) for c in close)
        raise UnknownAssetError(f"Unknown asset {name!r}. Did you mean {options}?")
    raise UnknownAssetError(
        f"Unknown asset {name!r}; {len(names)} assets are recorded, none with a similar name "
        "(`lakelens assets` lists them; `lakelens assets --search TEXT` finds one)."
    )


# An asset's state in one word: its last run failed, it is past its freshness SLA, it is
# fine, a run is under way, or it never ran (lineage-only and external assets).
ASSET_STATUSES = ("failing", "stale", "healthy", "running", "canceled", "skipped", "never")

_STATUS_SQL = (
    "CASE WHEN last_status = 'failure' THEN 'failing' "
    "WHEN freshness_seconds IS NOT NULL AND last_success_time IS NOT NULL "
    "AND :now - last_success_time > freshness_seconds THEN 'stale' "
    "WHEN last_status = 'success' THEN 'healthy' "
    "WHEN last_status IN ('started', 'queued') THEN 'running' "
    "WHEN last_status IS NULL THEN 'never' "
    "ELSE last_status END"
)


def _like(text: str) -> str:
    """A case-insensitive substring pattern; '/' escapes the text's own % and _."""
    return "%" + text.lower().replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"


@dataclass
class AssetFilter:
    """Which assets to list; each field narrows it. `search` looks in name, description,
    owner and tags (case-insensitive); `status` is one of ASSET_STATUSES."""

    search: str | None = None
    owner: str | None = None
    kind: str | None = None
    layer: str | None = None
    status: str | None = None

    def sql(self, now: float) -> tuple[str, dict[str, Any]]:
        """The filter as an SQL condition on `assets` (always true when nothing is set)."""
        clauses: list[str] = []
        params: dict[str, Any] = {}
        for column, value in (("owner", self.owner), ("kind", self.kind), ("layer", self.layer)):
            if value is not None:
                clauses.append(f"{column} = :{column}")
                params[column] = value
        if self.search:
            clauses.append(
                "(lower(name) LIKE :search ESCAPE '/' "
                "OR lower(coalesce(description, '')) LIKE :search ESCAPE '/' "
                "OR lower(coalesce(owner, '')) LIKE :search ESCAPE '/' "
                "OR lower(coalesce(tags, '')) LIKE :search ESCAPE '/')"
            )
            params["search"] = _like(self.search)
        if self.status is not None:
            if self.status not in ASSET_STATUSES:
                raise InvalidArgumentError(
                    f"Invalid status {self.status!r}: use one of {', '.join(ASSET_STATUSES)}."
                )
            clauses.append(f"({_STATUS_SQL}) = :status")
            params["status"] = self.status
        params["now"] = now
        return (" AND ".join(clauses) or "1 = 1"), params


@dataclass
class AssetListing:
    """One catalog row: what the asset is, who owns it, and how it is doing.

    `status` is the last run's status as stored (as in `/api/v1/assets` before the catalog);
    `health` is the one word the catalog filters on (ASSET_STATUSES)."""

    name: str
    kind: str
    owner: str | None
    layer: str | None
    group: str | None
    description: str | None
    critical: bool
    tags: Any
    status: str | None
    health: str
    freshness_seconds: float | None
    last_success: float | None
    age_seconds: float | None
    last_run_id: str | None
    last_rows: int | None

    @property
    def stale(self) -> bool | None:
        """Older than its freshness SLA; None with no SLA or no success yet (as lineage says)."""
        if self.freshness_seconds is None or self.age_seconds is None:
            return None
        return self.age_seconds > self.freshness_seconds

    @property
    def tag_labels(self) -> list[str]:
        """Tags as 'domain=x' / 'pii' labels."""
        if isinstance(self.tags, dict):
            return [
                k if v in (None, "", True) else f"{k}={v}" for k, v in sorted(self.tags.items())
            ]
        if isinstance(self.tags, list):
            return [str(v) for v in self.tags]
        return [] if self.tags in (None, "") else [str(self.tags)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "owner": self.owner,
            "layer": self.layer,
            "critical": self.critical,
            "freshness_seconds": self.freshness_seconds,
            "tags": self.tags,
            "status": self.status,
            "last_success": self.last_success,
            "age_seconds": self.age_seconds,
            "stale": self.stale,
            "health": self.health,
            "group": self.group,
            "description": self.description,
            "last_run_id": self.last_run_id,
            "last_rows": self.last_rows,
        }


@dataclass
class AssetPage:
    """Matching assets by name; `total` counts every match, `next_after` continues the list."""

    assets: list[AssetListing] = field(default_factory=list)
    total: int = 0
    next_after: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "assets": [a.to_dict() for a in self.assets],
            "total": self.total,
            "next_after": self.next_after,
        }


def _tags(text: str | None) -> Any:
    """Stored tags as lineage reads them ({"domain": "x"}, ["pii"]); {} when absent."""
    if not text:
        return {}
    try:
        return json.loads(text)
    except ValueError:
        return text


def list_assets(
    conn: Reader | sa.Connection,
    where: AssetFilter | None = None,
    *,
    now: float,
    limit: int | None = None,
    after: str | None = None,
) -> AssetPage:
    """The matching assets by name (at most `limit`, names after `after`), each with its status,
    freshness and the row count of its latest materialization that reported one."""
    db = borrow(conn)
    condition, params = (where or AssetFilter()).sql(now)
    total = int(db.value(f"SELECT count(*) FROM assets WHERE {condition}", params) or 0)
    page_condition = condition
    if after is not None:
        page_condition += " AND name > :after"
        params = {**params, "after": after}
    sql = (
        "SELECT name, kind, owner, layer, group_name, description, critical, tags, last_status, "
        f"{_STATUS_SQL}, freshness_seconds, last_success_time, last_run_id, "
        "(SELECT m.rows FROM materializations m WHERE m.asset = assets.name "
        "AND m.rows IS NOT NULL ORDER BY m.start_time DESC LIMIT 1) "
        f"FROM assets WHERE {page_condition} ORDER BY name"
    )
    if limit is not None:
        sql += " LIMIT :limit"
        params = {**params, "limit": limit + 1}
    rows = db.rows(sql, params)
    more = limit is not None and len(rows) > limit
    rows = rows[:limit] if limit is not None else rows
    listed = [
        AssetListing(
            name=name,
            kind=kind,
            owner=owner,
            layer=layer,
            group=group,
            description=description,
            critical=bool(critical),
            tags=_tags(tags),
            status=status,
            health=health,
            freshness_seconds=freshness,
            last_success=last_success,
            age_seconds=None if last_success is None else max(0.0, now - last_success),
            last_run_id=last_run_id,
            last_rows=None if last_rows is None else int(last_rows),
        )
        for (
            name,
            kind,
            owner,
            layer,
            group,
            description,
            critical,
            tags,
            status,
            health,
            freshness,
            last_success,
            last_run_id,
            last_rows,
        ) in rows
    ]
    return AssetPage(listed, total, listed[-1].name if more and listed else None)


TREND_POINTS = 12


def catalog_details(conn: Reader | sa.Connection, names: list[str]) -> dict[str, dict[str, Any]]:
    """What a catalog page shows beside each listed asset: the rows of its latest
    materializations (oldest first, at most TREND_POINTS) and the columns of its latest schema
    snapshot, as (name, type)."""
    db = borrow(conn)
    found: dict[str, dict[str, Any]] = {n: {"trend": [], "columns": []} for n in names}
    if not names:
        return found
    # One short index range per asset: a window over all their materializations read every
    # run of the busy ones (1.1 s for a page on the 1M-materialization store).
    for name in names:
        recent = db.column(
            "SELECT rows FROM materializations WHERE asset = :asset AND rows IS NOT NULL "
            "ORDER BY start_time DESC LIMIT :points",
            {"asset": name, "points": TREND_POINTS},
        )
        found[name]["trend"] = [int(r) for r in reversed(recent)]
    for asset, columns in db.rows(
        "SELECT s.asset, s.columns FROM schema_snapshots s WHERE s.asset IN :names "
        "AND s.id = (SELECT max(t.id) FROM schema_snapshots t WHERE t.asset = s.asset)",
        {"names": names},
    ):
        try:
            parsed = json.loads(columns)
        except (TypeError, ValueError):
            continue
        found[asset]["columns"] = [
            (str(c[0]), str(c[1]) if len(c) > 1 else "")
            for c in parsed
            if isinstance(c, list) and c
        ]
    return found
