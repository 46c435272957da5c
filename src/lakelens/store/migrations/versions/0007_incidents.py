"""Incidents: what people are told about, one per root cause, with a timeline.

Each active alert (a finding) belongs to one incident (`alerts.incident_id`); notifications
name the incident in `fingerprint`, so PagerDuty and Alertmanager dedup on it.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("key", sa.String(600), nullable=False),
        sa.Column("root_asset", sa.String(512)),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("opened_at", sa.Double, nullable=False),
        sa.Column("fault_at", sa.Double),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.Column("notified_at", sa.Double),
        sa.Column("notified_severity", sa.String(16)),
        sa.Column("last_notified_at", sa.Double),
        sa.Column("acknowledged_at", sa.Double),
        sa.Column("acknowledged_by", sa.String(128)),
        sa.Column("snoozed_until", sa.Double),
        sa.Column("resolved_at", sa.Double),
        sa.Column("resolved_by", sa.String(128)),
        sa.Column("details", sa.Text),
    )
    op.create_index("ix_incidents_status", "incidents", ["status"])
    op.create_index("ix_incidents_opened", "incidents", ["opened_at"])
    op.create_index("ix_incidents_root", "incidents", ["root_asset"])
    op.create_table(
        "incident_events",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.String(32), nullable=False),
        sa.Column("time", sa.Double, nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(128)),
        sa.Column("fingerprint", sa.String(64)),
        sa.Column("severity", sa.String(16)),
        sa.Column("text", sa.Text),
    )
    op.create_index("ix_incident_events_incident", "incident_events", ["incident_id", "time"])
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("incident_id", sa.String(32)))
    op.create_index("ix_alerts_incident", "alerts", ["incident_id"])


def downgrade() -> None:
    op.drop_index("ix_alerts_incident", "alerts")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("incident_id")
    op.drop_table("incident_events")
    op.drop_table("incidents")
