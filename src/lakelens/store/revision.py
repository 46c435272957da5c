"""The schema revision this lakelens writes and reads (no imports: the CLI checks it cheaply)."""

# The newest Alembic revision in store/migrations/versions; a test keeps the two in step.
HEAD_REVISION = "0017"
