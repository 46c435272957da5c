"""Asset lookup: exact names, unique prefixes, and 'did you mean' for typos."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

from lakelens.analysis._db import Reader, borrow
from lakelens.errors import LakelensError

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["UnknownAssetError", "asset_names", "resolve_asset"]


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
        "(`lakelens lineage export --format json` lists them)."
    )
