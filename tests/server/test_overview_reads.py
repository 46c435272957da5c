"""The overview's two independent reads: side by side on PostgreSQL, in turn on SQLite, with
the same result and the same errors either way."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from lakelens.errors import StoreError
from lakelens.server.pages import _beside


def context(sqlite: bool) -> object:
    return SimpleNamespace(store=SimpleNamespace(is_sqlite=sqlite))


@pytest.mark.parametrize(("sqlite", "elsewhere"), [(True, False), (False, True)])
def test_the_summary_is_read_beside_the_page_only_on_postgresql(
    sqlite: bool, elsewhere: bool
) -> None:
    here = threading.get_ident()
    started = threading.Event()

    def read() -> int:
        started.set()
        return threading.get_ident()

    with _beside(context(sqlite), read) as result:  # type: ignore[arg-type]
        # On PostgreSQL the read is under way while the block runs; on SQLite it waits.
        assert started.wait(5) if elsewhere else not started.is_set()
    assert (result() != here) is elsewhere


@pytest.mark.parametrize("sqlite", [True, False])
def test_an_error_of_the_read_reaches_the_page(sqlite: bool) -> None:
    def read() -> int:
        raise StoreError("the store is not reachable")

    with _beside(context(sqlite), read) as result:  # type: ignore[arg-type]
        pass
    with pytest.raises(StoreError, match="not reachable"):
        result()
