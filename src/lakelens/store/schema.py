"""The store's tables (SQLAlchemy Core). Times are UTC seconds since the epoch (double)."""

from __future__ import annotations

import sqlalchemy as sa

from lakelens.store.revision import HEAD_REVISION

__all__ = ["HEAD_REVISION", "metadata"]

metadata = sa.MetaData()

# Log ids must be SQLite rowids (INTEGER PRIMARY KEY) so that appends stay cheap.
_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_Time = sa.Double
_Count = sa.BigInteger

assets = sa.Table(
    "assets",
    metadata,
    sa.Column("name", sa.String(512), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False, server_default="asset"),
    sa.Column("owner", sa.String(256)),
    sa.Column("layer", sa.String(128)),
    sa.Column("group_name", sa.String(256)),
    sa.Column("description", sa.Text),
    sa.Column("freshness_seconds", sa.Double),
    sa.Column("availability_target", sa.Double),
    sa.Column("expected_rows", _Count),
    sa.Column("critical", sa.Boolean),
    sa.Column("tags", sa.Text),
    sa.Column("updated_at", _Time),
    # Latest outcome, kept by the writer in the materialization's transaction (revision 0002),
    # so health and freshness never scan the materializations table.
    sa.Column("last_status", sa.String(16)),
    sa.Column("last_start_time", _Time),
    sa.Column("last_end_time", _Time),
    sa.Column("last_run_id", sa.String(128)),
    sa.Column("last_success_time", _Time),
    sa.Column("last_failure_time", _Time),
    sa.Column("failure_streak", sa.Integer),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(128), primary_key=True),
    sa.Column("job", sa.String(512), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("start_time", _Time),
    sa.Column("end_time", _Time),
    sa.Column("partition", sa.String(256)),
    sa.Column("trigger", sa.String(128)),
    sa.Column("tags", sa.Text),
    sa.Column("correlation_id", sa.String(128)),
    sa.Column("trace_id", sa.String(64)),
    sa.Column("parent_run_id", sa.String(128)),
    sa.Column("error_type", sa.String(256)),
    sa.Column("error_message", sa.Text),
    sa.Column("error_traceback", sa.Text),
    sa.Index("ix_runs_start_time", "start_time"),
    sa.Index("ix_runs_job_start", "job", "start_time"),
    # The partition grid and `runs --partition` (revision 0012).
    sa.Index("ix_runs_job_partition", "job", "partition", "start_time"),
    sa.Index("ix_runs_partition_start", "partition", "start_time"),
)

materializations = sa.Table(
    "materializations",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("run_id", sa.String(128), nullable=False),
    sa.Column("asset", sa.String(512), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("start_time", _Time),
    sa.Column("end_time", _Time),
    sa.Column("duration", sa.Double),
    sa.Column("partition", sa.String(256)),
    sa.Column("rows", _Count),
    sa.Column("bytes", _Count),
    sa.Column("inserts", _Count),
    sa.Column("updates", _Count),
    sa.Column("cpu_seconds", sa.Double),
    sa.Column("peak_memory_bytes", _Count),
    sa.Column("error_type", sa.String(256)),
    sa.Column("error_message", sa.Text),
    sa.Column("error_traceback", sa.Text),
    sa.Column("attributes", sa.Text),
    # "last N runs of asset X"; with status and duration, the overview's period figures read
    # the index alone (0017)
    sa.Index("ix_mat_asset_start", "asset", "start_time", "status", "duration"),
    sa.Index("ix_mat_run", "run_id"),
    # "errors since T" and period aggregates
    sa.Index("ix_mat_start", "start_time"),
    sa.Index("ix_mat_status_start", "status", "start_time"),
)

check_results = sa.Table(
    "check_results",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("run_id", sa.String(128)),
    sa.Column("asset", sa.String(512), nullable=False),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("time", _Time, nullable=False),
    sa.Column("value", sa.Double),
    sa.Column("threshold", sa.Double),
    sa.Column("valid_rows", _Count),
    sa.Column("total_rows", _Count),
    sa.Column("message", sa.Text),
    sa.Column("attributes", sa.Text),
    sa.Index("ix_check_asset_name_time", "asset", "name", "time", "passed"),
    sa.Index("ix_check_time", "time"),
    sa.Index("ix_check_run", "run_id"),
)

# Hourly rollups (revision 0006), kept exact by database triggers on materializations and
# check_results; long windows read them instead of every row (analysis/rollups.py).
asset_hours = sa.Table(
    "asset_hours",
    metadata,
    sa.Column("hour", _Time, primary_key=True),
    sa.Column("asset", sa.String(512), primary_key=True),
    sa.Column("materializations", _Count, nullable=False, server_default="0"),
    sa.Column("successes", _Count, nullable=False, server_default="0"),
    sa.Column("failures", _Count, nullable=False, server_default="0"),
    sa.Column("rows", _Count, nullable=False, server_default="0"),
    sa.Column("bytes", _Count, nullable=False, server_default="0"),
    sa.Column("success_rows", _Count, nullable=False, server_default="0"),
    sa.Column("cpu_seconds", sa.Double, nullable=False, server_default="0"),
    sa.Column("checks", _Count, nullable=False, server_default="0"),
    sa.Column("checks_failed", _Count, nullable=False, server_default="0"),
    sqlite_with_rowid=False,
)

# Durations of the materializations started in each hour, in log-scale buckets (all assets).
hour_durations = sa.Table(
    "hour_durations",
    metadata,
    sa.Column("hour", _Time, primary_key=True),
    sa.Column("bucket", sa.Integer, primary_key=True),
    sa.Column("n", _Count, nullable=False, server_default="0"),
    sqlite_with_rowid=False,
)

duration_buckets = sa.Table(
    "duration_buckets",
    metadata,
    sa.Column("bucket", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("lower", sa.Double, nullable=False, unique=True),
)

logs = sa.Table(
    "logs",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("time", _Time, nullable=False),
    sa.Column("level", sa.SmallInteger, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("logger", sa.String(256)),
    sa.Column("run_id", sa.String(128)),
    sa.Column("asset", sa.String(512)),
    sa.Column("job", sa.String(512)),
    sa.Column("trace_id", sa.String(64)),
    sa.Column("span_id", sa.String(32)),
    sa.Column("attributes", sa.Text),
    # "logs of run R" in order
    sa.Index("ix_logs_run", "run_id", "id"),
    sa.Index("ix_logs_asset_time", "asset", "time"),
    # "errors since T"
    sa.Index("ix_logs_level_time", "level", "time"),
    sa.Index("ix_logs_time", "time"),
)

spans = sa.Table(
    "spans",
    metadata,
    sa.Column("trace_id", sa.String(64), primary_key=True),
    sa.Column("span_id", sa.String(32), primary_key=True),
    sa.Column("parent_id", sa.String(32)),
    sa.Column("run_id", sa.String(128)),
    sa.Column("asset", sa.String(512)),
    sa.Column("name", sa.String(512), nullable=False),
    sa.Column("start_time", _Time, nullable=False),
    sa.Column("end_time", _Time),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error_message", sa.Text),
    sa.Column("attributes", sa.Text),
    sa.Column("events", sa.Text),
    sa.Index("ix_spans_run", "run_id"),
    sa.Index("ix_spans_start", "start_time"),
)

lineage_edges = sa.Table(
    "lineage_edges",
    metadata,
    sa.Column("upstream", sa.String(512), primary_key=True),
    sa.Column("downstream", sa.String(512), primary_key=True),
    sa.Column("source", sa.String(32), primary_key=True),
    sa.Column("columns", sa.Text),
    sa.Column("updated_at", _Time),
    # JSON: transformation types per input column and dataset-wide inputs (migration 0010).
    sa.Column("column_details", sa.Text),
    sa.Index("ix_lineage_downstream", "downstream"),
)

schema_snapshots = sa.Table(
    "schema_snapshots",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("asset", sa.String(512), nullable=False),
    sa.Column("time", _Time, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("columns", sa.Text, nullable=False),
    sa.Column("run_id", sa.String(128)),
    sa.Index("ix_schema_asset_time", "asset", "time"),
)

metric_points = sa.Table(
    "metric_points",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("time", _Time, nullable=False),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("value", sa.Double, nullable=False),
    sa.Column("labels", sa.Text),
    sa.Column("run_id", sa.String(128)),
    sa.Column("asset", sa.String(512)),
    sa.Index("ix_metric_name_time", "name", "time"),
    sa.Index("ix_metric_time", "time"),
)

# -- alerting (revision 0003) ------------------------------------------------------------------

alerts = sa.Table(
    "alerts",
    metadata,
    # sha256 of rule + asset + check or error class: the dedup key (and PagerDuty's dedup_key).
    sa.Column("fingerprint", sa.String(64), primary_key=True),
    sa.Column("rule", sa.String(128), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("asset", sa.String(512)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("details", sa.Text),
    sa.Column("run_id", sa.String(128)),
    sa.Column("occurrence", sa.String(256)),
    sa.Column("count", sa.Integer, nullable=False, server_default="1"),
    sa.Column("first_seen", _Time, nullable=False),
    sa.Column("last_seen", _Time, nullable=False),
    sa.Column("last_notified", _Time),
    sa.Column("resolved_at", _Time),
    sa.Column("acknowledged_at", _Time),
    sa.Column("parent", sa.String(64)),
    # The incident this finding belongs to (revision 0007).
    sa.Column("incident_id", sa.String(32)),
    sa.Index("ix_alerts_status", "status"),
    sa.Index("ix_alerts_asset", "asset"),
    sa.Index("ix_alerts_incident", "incident_id"),
)

alert_events = sa.Table(
    "alert_events",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("time", _Time, nullable=False),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("severity", sa.String(16)),
    sa.Column("asset", sa.String(512)),
    sa.Column("summary", sa.Text),
    sa.Column("count", sa.Integer),
    sa.Index("ix_alert_events_time", "time"),
    sa.Index("ix_alert_events_fp", "fingerprint", "time"),
)

notifications = sa.Table(
    "notifications",
    metadata,
    # Also the idempotency key sent with every attempt (webhook-id, Slack/PD retries).
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("destination", sa.String(128), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", _Time, nullable=False),
    sa.Column("next_attempt_at", _Time, nullable=False),
    sa.Column("claimed_until", _Time),
    sa.Column("delivered_at", _Time),
    # When the last attempt ended in delivered, failed or gave_up (revision 0005).
    sa.Column("finished_at", _Time),
    sa.Column("last_status_code", sa.Integer),
    sa.Column("last_error", sa.Text),
    sa.Index("ix_notifications_due", "status", "next_attempt_at"),
    sa.Index("ix_notifications_fp", "fingerprint"),
    sa.Index("ix_notifications_created", "created_at"),
)

silences = sa.Table(
    "silences",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("fingerprint", sa.String(64)),
    sa.Column("asset", sa.String(512)),
    sa.Column("starts_at", _Time, nullable=False),
    sa.Column("ends_at", _Time, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("created_by", sa.String(128)),
    sa.Column("ended_at", _Time),
    sa.Index("ix_silences_ends", "ends_at"),
)

# -- incidents (revision 0007): one per root cause; what people are told about -------------------

incidents = sa.Table(
    "incidents",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    # What groups findings: "asset:NAME" (the root cause), "job:NAME", "destination:NAME", …
    sa.Column("key", sa.String(600), nullable=False),
    sa.Column("root_asset", sa.String(512)),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    # open → acknowledged → resolved
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("opened_at", _Time, nullable=False),
    # When the fault happened (the failed run's end, the check's time, when data became due).
    sa.Column("fault_at", _Time),
    sa.Column("updated_at", _Time, nullable=False),
    sa.Column("notified_at", _Time),
    sa.Column("notified_severity", sa.String(16)),
    sa.Column("last_notified_at", _Time),
    sa.Column("acknowledged_at", _Time),
    sa.Column("acknowledged_by", sa.String(128)),
    sa.Column("snoozed_until", _Time),
    sa.Column("resolved_at", _Time),
    sa.Column("resolved_by", sa.String(128)),
    sa.Column("details", sa.Text),
    sa.Index("ix_incidents_status", "status"),
    sa.Index("ix_incidents_opened", "opened_at"),
    sa.Index("ix_incidents_root", "root_asset"),
)

incident_events = sa.Table(
    "incident_events",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("incident_id", sa.String(32), nullable=False),
    sa.Column("time", _Time, nullable=False),
    # opened, joined, cleared, notified, escalated, reminder, acknowledged, snoozed, note, resolved
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("actor", sa.String(128)),
    sa.Column("fingerprint", sa.String(64)),
    sa.Column("severity", sa.String(16)),
    sa.Column("text", sa.Text),
    sa.Index("ix_incident_events_incident", "incident_id", "time"),
)

# -- feedback and maintenance (revision 0008) ----------------------------------------------------

# "That was a false positive / expected": the run's points leave the asset's learned baselines.
baseline_feedback = sa.Table(
    "baseline_feedback",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("incident_id", sa.String(32)),
    sa.Column("asset", sa.String(512), nullable=False),
    sa.Column("run_id", sa.String(128)),
    sa.Column("rule", sa.String(128)),
    # false_positive | expected
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("created_by", sa.String(128)),
    sa.Column("time", _Time, nullable=False),
    sa.Index("ix_baseline_feedback_asset", "asset"),
)

# Recurring silences made with the CLI ("Sat 00:00-06:00"); lakelens.yaml can declare more.
maintenance_windows = sa.Table(
    "maintenance_windows",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("schedule", sa.String(128), nullable=False),
    # JSON list of asset globs; empty or NULL: every asset
    sa.Column("assets", sa.Text),
    sa.Column("created_by", sa.String(128)),
    sa.Column("created_at", _Time, nullable=False),
    sa.Column("ended_at", _Time),
)

# -- asset aliases (revision 0009): the other names of one asset (ingest/identity.py) ----------

asset_aliases = sa.Table(
    "asset_aliases",
    metadata,
    # A dbt relation (`db.schema.table`, `schema.table`), unique_id, OpenLineage dataset
    # (`namespace/name`), Dagster key or a name declared in lakelens.yaml.
    sa.Column("alias", sa.String(512), primary_key=True),
    sa.Column("asset", sa.String(512), nullable=False),
    # dbt | dagster | openlineage | native | config
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("time", _Time, nullable=False),
    sa.Index("ix_asset_aliases_asset", "asset"),
)

# -- the data itself (revision 0011): profiles, warehouse observations, monitors ----------------

# One column profile of an asset's data. `columns` holds {"columns": {column: {type, count,
# nulls, null_rate, distinct, min, max, mean, …}}, "error": "…" when profiling failed}
# (docs/profiles.md).
profiles = sa.Table(
    "profiles",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("asset", sa.String(512), nullable=False),
    sa.Column("run_id", sa.String(128)),
    sa.Column("time", _Time, nullable=False),
    sa.Column("row_count", _Count),
    # Rows the statistics were computed from when a sample (NULL: every row).
    sa.Column("sampled_rows", _Count),
    # sdk | dlt | dagster | monitor
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("columns", sa.Text, nullable=False),
    sa.Index("ix_profiles_asset_time", "asset", "time"),
)

# What a monitor read of a warehouse table from its metadata.
table_observations = sa.Table(
    "table_observations",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("asset", sa.String(512), nullable=False),
    sa.Column("monitor", sa.String(64), nullable=False),
    sa.Column("time", _Time, nullable=False),
    sa.Column("row_count", _Count),
    # True: the engine's estimate (pg_class.reltuples …), not count(*).
    sa.Column("row_count_estimated", sa.Boolean),
    sa.Column("bytes", _Count),
    sa.Column("modified_at", _Time),
    # column (a declared timestamp column) | statistics | file
    sa.Column("modified_source", sa.String(32)),
    sa.Index("ix_table_observations_asset_time", "asset", "time"),
)

# Warehouses lakelens polls; `url` holds no password (it comes from the environment).
monitors = sa.Table(
    "monitors",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    # JSON: schema, table globs, interval, timestamp and profiled columns, limits
    sa.Column("settings", sa.Text, nullable=False),
    sa.Column("created_at", _Time, nullable=False),
    sa.Column("last_run", _Time),
    sa.Column("last_error", sa.Text),
)

# Who reads an asset and how often (revision 0013): a job that read it as an input, or views
# of a dashboard reported through the SDK or API.
asset_usage = sa.Table(
    "asset_usage",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("asset", sa.String(512), nullable=False),
    sa.Column("time", _Time, nullable=False),
    # read | view
    sa.Column("kind", sa.String(16), nullable=False),
    # the job (reads) or dashboard (views)
    sa.Column("reader", sa.String(512), nullable=False),
    sa.Column("run_id", sa.String(128)),
    sa.Column("count", _Count, nullable=False),
    # openlineage | sdk | api
    sa.Column("source", sa.String(32), nullable=False),
    sa.Index("ix_asset_usage_asset_time", "asset", "time"),
)

heartbeats = sa.Table(
    "heartbeats",
    metadata,
    sa.Column("component", sa.String(64), primary_key=True),
    sa.Column("last_run", _Time, nullable=False),
    sa.Column("owner", sa.String(256)),
    sa.Column("details", sa.Text),
)

# Batch ids the ingest endpoints have committed (revision 0004): a retried batch is stored once.
ingest_batches = sa.Table(
    "ingest_batches",
    metadata,
    sa.Column("batch_id", sa.String(128), primary_key=True),
    sa.Column("received_at", _Time, nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("accepted", sa.Integer, nullable=False),
    sa.Column("rejected", sa.Integer, nullable=False),
    sa.Index("ix_ingest_batches_received", "received_at"),
)

# Filled by migration 0006 and never written again: not recorded data.
REFERENCE_TABLES = frozenset({"duration_buckets"})


def data_tables() -> list[sa.Table]:
    """Every table of recorded data (what a test or a reset may empty), in dependency order."""
    return [t for t in metadata.sorted_tables if t.name not in REFERENCE_TABLES]
