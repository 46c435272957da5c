"""Alerting: rules → alerts (deduplicated by fingerprint) → routing → outbox → destinations."""
