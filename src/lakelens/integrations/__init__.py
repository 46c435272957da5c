"""Integrations: what Dagster, dbt and dlt record, turned into lakelens events."""
