"""The live tail (`analysis.logs.follow`) shows each record once when ids commit out of order.

Ids are drawn before commit, so a record can become visible after a higher id was shown. These
tests make that happen at exact points of a poll, on a real store, by committing a row from a
reader that wraps the tail's own connection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lakelens.analysis.logs import COLUMNS, LogFilter, follow
from lakelens.store import Store, schema
from lakelens.store.sql import Params, Reader

T0 = 1_700_000_000.0


def _commit(store: Store, *ids: int, message: str = "line") -> None:
    with store.engine.begin() as conn:
        conn.execute(
            schema.logs.insert(),
            [
                {"id": i, "time": T0 + i, "level": 20, "message": f"{message} {i}", "run_id": "r"}
                for i in ids
            ],
        )


class _Hooked(Reader):
    """A reader that runs `after` once, right after the first statement matching `marker`."""

    def __init__(self, inner: Reader, marker: str, after: Callable[[], None]) -> None:
        self.inner = inner
        self.dialect = inner.dialect
        self.marker = marker
        self.after: Callable[[], None] | None = after

    def rows(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        found = self.inner.rows(sql, params)
        if self.after is not None and self.marker in sql:
            after, self.after = self.after, None
            after()
        return found

    def close(self) -> None:
        self.inner.close()


def _tail(store: Store, hooks: list[tuple[str, Callable[[], None]]], polls: int) -> list[int]:
    """The ids `follow` yields over `polls` polls; poll n's reader runs hooks[n - 1] if given."""
    count = 0

    def connect() -> Reader:
        nonlocal count
        count += 1
        inner = store.reader()
        if count <= len(hooks):
            marker, after = hooks[count - 1]
            return _Hooked(inner, marker, after)
        return inner

    stopped = lambda: count >= polls  # noqa: E731 - read after each poll
    return [r.id for r in follow(connect, LogFilter(), after_id=0, interval=0.0, stop=stopped)]


_IDS = "SELECT id FROM logs WHERE id > :position"  # the poll's id read
_ROWS = f"SELECT {COLUMNS} FROM logs WHERE id > :position"  # the poll's row read


def test_a_hole_that_commits_between_the_id_read_and_the_row_read_is_shown_once(
    store: Store,
) -> None:
    # Ids 1 and 3 are committed; 2 was drawn earlier and commits just after the poll read the
    # ids, so the poll notes 2 as a hole and its row read shows 1, 2 and 3. The next polls
    # look the holes up: 2 must not be shown again.
    _commit(store, 1, 3)
    shown = _tail(store, [(_IDS, lambda: _commit(store, 2))], polls=3)
    assert shown == [1, 2, 3]


def test_a_hole_that_commits_after_the_row_read_is_shown_once_by_a_later_poll(
    store: Store,
) -> None:
    _commit(store, 1, 3)
    shown = _tail(store, [(_ROWS, lambda: _commit(store, 2))], polls=3)
    assert shown == [1, 3, 2]


def test_a_hole_that_never_commits_holds_nothing_back(store: Store) -> None:
    _commit(store, 1, 3)
    shown = _tail(store, [(_ROWS, lambda: _commit(store, 4, 5))], polls=3)
    assert shown == [1, 3, 4, 5]
