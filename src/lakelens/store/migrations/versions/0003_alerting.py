"""Alerting: alerts (dedup state), their history, the notification outbox, silences, heartbeats.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alerts",
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
        sa.Column("first_seen", sa.Double, nullable=False),
        sa.Column("last_seen", sa.Double, nullable=False),
        sa.Column("last_notified", sa.Double),
        sa.Column("resolved_at", sa.Double),
        sa.Column("acknowledged_at", sa.Double),
        sa.Column("parent", sa.String(64)),
    )
    op.create_index("ix_alerts_status", "alerts", ["status"])
    op.create_index("ix_alerts_asset", "alerts", ["asset"])
    op.create_table(
        "alert_events",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("time", sa.Double, nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(16)),
        sa.Column("asset", sa.String(512)),
        sa.Column("summary", sa.Text),
        sa.Column("count", sa.Integer),
    )
    op.create_index("ix_alert_events_time", "alert_events", ["time"])
    op.create_index("ix_alert_events_fp", "alert_events", ["fingerprint", "time"])
    op.create_table(
        "notifications",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("destination", sa.String(128), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("next_attempt_at", sa.Double, nullable=False),
        sa.Column("claimed_until", sa.Double),
        sa.Column("delivered_at", sa.Double),
        sa.Column("last_status_code", sa.Integer),
        sa.Column("last_error", sa.Text),
    )
    op.create_index("ix_notifications_due", "notifications", ["status", "next_attempt_at"])
    op.create_index("ix_notifications_fp", "notifications", ["fingerprint"])
    op.create_index("ix_notifications_created", "notifications", ["created_at"])
    op.create_table(
        "silences",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("fingerprint", sa.String(64)),
        sa.Column("asset", sa.String(512)),
        sa.Column("starts_at", sa.Double, nullable=False),
        sa.Column("ends_at", sa.Double, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("created_by", sa.String(128)),
        sa.Column("ended_at", sa.Double),
    )
    op.create_index("ix_silences_ends", "silences", ["ends_at"])
    op.create_table(
        "heartbeats",
        sa.Column("component", sa.String(64), primary_key=True),
        sa.Column("last_run", sa.Double, nullable=False),
        sa.Column("owner", sa.String(256)),
        sa.Column("details", sa.Text),
    )


def downgrade() -> None:
    for table in ("heartbeats", "silences", "notifications", "alert_events", "alerts"):
        op.drop_table(table)
