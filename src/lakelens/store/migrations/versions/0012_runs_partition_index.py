"""Runs by partition: the partition grid and `runs --partition`.

(job, partition, start_time) serves the partition grid (latest run per partition of a job:
53 -> 16 ms for 2,000 partitions of 100k runs on SQLite, bench/partitions.py) and the list of
partitioned jobs (45 -> 3.9 ms); (partition, start_time) serves `lakelens runs --partition P`
without a job, which scanned every run.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_runs_job_partition", "runs", ["job", "partition", "start_time"])
    op.create_index("ix_runs_partition_start", "runs", ["partition", "start_time"])


def downgrade() -> None:
    op.drop_index("ix_runs_partition_start", "runs")
    op.drop_index("ix_runs_job_partition", "runs")
