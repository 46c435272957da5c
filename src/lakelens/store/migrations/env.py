"""Alembic environment: lakelens always hands in an open connection (see store/migrate.py)."""

from __future__ import annotations

from alembic import context

from lakelens.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "lakelens migrations run through `lakelens db upgrade`, not the alembic CLI."
    )

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
