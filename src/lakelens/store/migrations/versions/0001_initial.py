"""The first schema: assets, runs, materializations, checks, logs, spans, lineage, schemas, metrics.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copy of the tables as they were at this revision; later changes go in new revisions.
_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "assets",
        sa.Column("name", sa.String(512), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False, server_default="asset"),
        sa.Column("owner", sa.String(256)),
        sa.Column("layer", sa.String(128)),
        sa.Column("group_name", sa.String(256)),
        sa.Column("description", sa.Text),
        sa.Column("freshness_seconds", sa.Double),
        sa.Column("availability_target", sa.Double),
        sa.Column("expected_rows", sa.BigInteger),
        sa.Column("critical", sa.Boolean),
        sa.Column("tags", sa.Text),
        sa.Column("updated_at", sa.Double),
    )
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(128), primary_key=True),
        sa.Column("job", sa.String(512), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("start_time", sa.Double),
        sa.Column("end_time", sa.Double),
        sa.Column("partition", sa.String(256)),
        sa.Column("trigger", sa.String(128)),
        sa.Column("tags", sa.Text),
        sa.Column("correlation_id", sa.String(128)),
        sa.Column("trace_id", sa.String(64)),
        sa.Column("parent_run_id", sa.String(128)),
        sa.Column("error_type", sa.String(256)),
        sa.Column("error_message", sa.Text),
        sa.Column("error_traceback", sa.Text),
    )
    op.create_index("ix_runs_start_time", "runs", ["start_time"])
    op.create_index("ix_runs_job_start", "runs", ["job", "start_time"])
    op.create_table(
        "materializations",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("run_id", sa.String(128), nullable=False),
        sa.Column("asset", sa.String(512), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("start_time", sa.Double),
        sa.Column("end_time", sa.Double),
        sa.Column("duration", sa.Double),
        sa.Column("partition", sa.String(256)),
        sa.Column("rows", sa.BigInteger),
        sa.Column("bytes", sa.BigInteger),
        sa.Column("inserts", sa.BigInteger),
        sa.Column("updates", sa.BigInteger),
        sa.Column("cpu_seconds", sa.Double),
        sa.Column("peak_memory_bytes", sa.BigInteger),
        sa.Column("error_type", sa.String(256)),
        sa.Column("error_message", sa.Text),
        sa.Column("error_traceback", sa.Text),
        sa.Column("attributes", sa.Text),
    )
    op.create_index("ix_mat_asset_start", "materializations", ["asset", "start_time"])
    op.create_index("ix_mat_run", "materializations", ["run_id"])
    op.create_index("ix_mat_start", "materializations", ["start_time"])
    op.create_index("ix_mat_status_start", "materializations", ["status", "start_time"])
    op.create_table(
        "check_results",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("run_id", sa.String(128)),
        sa.Column("asset", sa.String(512), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("time", sa.Double, nullable=False),
        sa.Column("value", sa.Double),
        sa.Column("threshold", sa.Double),
        sa.Column("valid_rows", sa.BigInteger),
        sa.Column("total_rows", sa.BigInteger),
        sa.Column("message", sa.Text),
        sa.Column("attributes", sa.Text),
    )
    op.create_index("ix_check_asset_name_time", "check_results", ["asset", "name", "time"])
    op.create_index("ix_check_time", "check_results", ["time"])
    op.create_index("ix_check_run", "check_results", ["run_id"])
    op.create_table(
        "logs",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("time", sa.Double, nullable=False),
        sa.Column("level", sa.SmallInteger, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("logger", sa.String(256)),
        sa.Column("run_id", sa.String(128)),
        sa.Column("asset", sa.String(512)),
        sa.Column("job", sa.String(512)),
        sa.Column("trace_id", sa.String(64)),
        sa.Column("span_id", sa.String(32)),
        sa.Column("attributes", sa.Text),
    )
    op.create_index("ix_logs_run", "logs", ["run_id", "id"])
    op.create_index("ix_logs_asset_time", "logs", ["asset", "time"])
    op.create_index("ix_logs_level_time", "logs", ["level", "time"])
    op.create_index("ix_logs_time", "logs", ["time"])
    op.create_table(
        "spans",
        sa.Column("trace_id", sa.String(64), primary_key=True),
        sa.Column("span_id", sa.String(32), primary_key=True),
        sa.Column("parent_id", sa.String(32)),
        sa.Column("run_id", sa.String(128)),
        sa.Column("asset", sa.String(512)),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("start_time", sa.Double, nullable=False),
        sa.Column("end_time", sa.Double),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_message", sa.Text),
        sa.Column("attributes", sa.Text),
        sa.Column("events", sa.Text),
    )
    op.create_index("ix_spans_run", "spans", ["run_id"])
    op.create_index("ix_spans_start", "spans", ["start_time"])
    op.create_table(
        "lineage_edges",
        sa.Column("upstream", sa.String(512), primary_key=True),
        sa.Column("downstream", sa.String(512), primary_key=True),
        sa.Column("source", sa.String(32), primary_key=True),
        sa.Column("columns", sa.Text),
        sa.Column("updated_at", sa.Double),
    )
    op.create_index("ix_lineage_downstream", "lineage_edges", ["downstream"])
    op.create_table(
        "schema_snapshots",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("asset", sa.String(512), nullable=False),
        sa.Column("time", sa.Double, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("columns", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(128)),
    )
    op.create_index("ix_schema_asset_time", "schema_snapshots", ["asset", "time"])
    op.create_table(
        "metric_points",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("time", sa.Double, nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.Double, nullable=False),
        sa.Column("labels", sa.Text),
        sa.Column("run_id", sa.String(128)),
        sa.Column("asset", sa.String(512)),
    )
    op.create_index("ix_metric_name_time", "metric_points", ["name", "time"])
    op.create_index("ix_metric_time", "metric_points", ["time"])


def downgrade() -> None:
    for table in (
        "metric_points",
        "schema_snapshots",
        "lineage_edges",
        "spans",
        "logs",
        "check_results",
        "materializations",
        "runs",
        "assets",
    ):
        op.drop_table(table)
