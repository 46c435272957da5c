"""Fixtures of the store tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lakelens.store import Store


def _migrate_to(store: Store, revision: str, *, down: bool = False) -> None:
    from alembic import command
    from alembic.config import Config

    from lakelens.store import migrate

    config = Config()
    config.set_main_option("script_location", str(migrate._MIGRATIONS))
    store.stop_background_work()  # as Store.upgrade does
    with store.engine.connect() as conn:
        config.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(config, revision)
        conn.commit()


@pytest.fixture
def migrate_to() -> Callable[..., None]:
    """Bring a store (opened with auto_upgrade=False) to another revision, to test upgrades
    (and with `down=True`, downgrades)."""
    return _migrate_to
