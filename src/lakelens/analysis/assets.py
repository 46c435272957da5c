"""Asset lookup: exact names, unique prefixes, and 'did you mean' for typos."""

from __future__ import annotations

import difflib

import sqlalchemy as sa

from lakelens.errors import LakelensError
from lakelens.store import schema

__all__ = ["UnknownAssetError", "asset_names", "resolve_asset"]


class UnknownAssetError(LakelensError):
    """The name matches no recorded asset."""


def asset_names(conn: sa.Connection) -> list[str]:
    """Every asset the store knows of (the registry includes lineage-only names)."""
    return list(
        conn.execute(sa.select(schema.assets.c.name).order_by(schema.assets.c.name)).scalars()
    )


def resolve_asset(conn: sa.Connection, name: str) -> str:
    """`name` itself when recorded; otherwise UnknownAssetError with the closest names."""
    exists = conn.execute(
        sa.select(schema.assets.c.name).where(schema.assets.c.name == name)
    ).first()
    if exists:
        return name
    names = asset_names(conn)
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
