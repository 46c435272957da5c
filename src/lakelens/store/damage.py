"""A damaged or foreign SQLite file, told in one sentence that names it and what to do.

SQLite reports damage as it trips over it: a zeroed or overwritten header on open ("file is
not a database"), a bad page when a query reaches it ("database disk image is malformed").
`damage_error` turns those into a StoreDamagedError wherever the store reads or writes;
`check_file` refuses a file that is not SQLite or holds another program's tables before
lakelens adds its own to it; `quick_check` finds damage no query has reached yet (`/health`
runs it on a schedule).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from lakelens.errors import StoreError

__all__ = ["StoreDamagedError", "check_file", "damage_error", "damaged", "quick_check"]

SQLITE_HEADER = b"SQLite format 3\x00"
# What sqlite3 says about a file it cannot trust (lower case; matched inside the message).
_DAMAGE = (
    "database disk image is malformed",
    "malformed database schema",
    "file is not a database",
    "file is encrypted or is not a database",
    "database corruption",
)


class StoreDamagedError(StoreError):
    """The store's file is damaged, is not a SQLite database, or is not a lakelens store."""


def _recover_hint(path: Path | str) -> str:
    return (
        "restore it from a backup, or move it aside to start a new store "
        f"(`sqlite3 {path} .recover` may save what is left)"
    )


def damage_error(path: Path | str, exc: BaseException) -> StoreDamagedError | None:
    """The one-line error for `exc` when it says the file at `path` is damaged, else None."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    lowered = text.lower()
    if not any(marker in lowered for marker in _DAMAGE):
        return None
    if "not a database" in lowered:
        return StoreDamagedError(
            f"{path} is not a SQLite database (damaged, or another kind of file): move it "
            "aside to start a new store, or point LAKELENS_HOME / LAKELENS_DATABASE_URL at "
            "your lakelens store."
        )
    return damaged(path, text)


def damaged(path: Path | str, reason: str) -> StoreDamagedError:
    """'The store X is damaged (reason): restore it from a backup, or …'."""
    reason = " ".join(reason.split())[:200]
    return StoreDamagedError(f"The store {path} is damaged ({reason}): {_recover_hint(path)}.")


def check_file(path: Path) -> None:
    """Refuse, before anything opens it, a file that is not SQLite or not a lakelens store.

    A missing or empty file is fine: it becomes a new store.
    """
    try:
        with open(path, "rb") as file:
            header = file.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(
            f"Cannot read the store {path}: {exc.strerror or exc}; check its permissions."
        ) from None
    if not header:
        return
    if header != SQLITE_HEADER:
        raise StoreDamagedError(
            f"{path} is not a SQLite database (damaged, or another kind of file): move it "
            "aside to start a new store, or point LAKELENS_HOME / LAKELENS_DATABASE_URL at "
            "your lakelens store."
        )
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error:
        return  # the engine will say why
    try:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
    except sqlite3.DatabaseError as exc:
        raise damage_error(path, exc) or StoreError(
            f"Cannot open the store {path}: {exc}."
        ) from None
    finally:
        conn.close()
    if tables and "alembic_version" not in tables:
        shown = ", ".join(tables[:5]) + (", …" if len(tables) > 5 else "")
        raise StoreDamagedError(
            f"{path} is a SQLite database but not a lakelens store (it has the tables "
            f"{shown}): point LAKELENS_HOME / LAKELENS_DATABASE_URL at a lakelens store or "
            "at a new file."
        )


def quick_check(path: Path, *, timeout: float = 30.0) -> str | None:
    """The first problem `PRAGMA quick_check` finds in the file at `path`, or None when sound.

    quick_check reads every page (seconds on a multi-GB store) but takes no write lock.
    """
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=timeout)
    except sqlite3.Error as exc:
        return str(exc)
    try:
        rows = conn.execute("PRAGMA quick_check(1)").fetchall()
    except sqlite3.DatabaseError as exc:
        if damage_error(path, exc) is None:
            raise
        return str(exc)
    finally:
        conn.close()
    first = str(rows[0][0]) if rows else "ok"
    return None if first == "ok" else first
