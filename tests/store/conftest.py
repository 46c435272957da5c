"""Fixtures of the store tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lakelens.store import Store


def _migrate_to(store: Store, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    from lakelens.store import migrate

    config = Config()
    config.set_main_option("script_location", str(migrate._MIGRATIONS))
    with store.engine.connect() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
        conn.commit()


@pytest.fixture
def migrate_to() -> Callable[[Store, str], None]:
    """Bring a store (opened with auto_upgrade=False) to an older revision, to test upgrades."""
    return _migrate_to
