"""The glucose pipeline, instrumented with lakelens: the example `lakelens demo` records.

    nightscout_api → dlt_glucose_entries → stg_glucose_entries → fct_glucose_readings
        fct_glucose_readings → mrt_glucose_readings → publish_glucose_marts → superset_glucose_dashboard
        fct_glucose_readings → fct_daily_glucose_metrics → mrt_glucose_hourly_patterns

Everything lakelens-related is what a real pipeline would write. The API and the lakehouse
are the simulated clients of `lakelens.demo.simulation`: they move a fake clock instead of
doing I/O, so a day of runs is recorded in seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import lakelens
from lakelens.demo.simulation import EntriesPage, Lakehouse, NightscoutAPI, QueryStats
from lakelens.units import format_duration

__all__ = ["ASSETS", "JOB", "GlucosePipeline"]

JOB = "glucose_pipeline"
ENDPOINT = "/api/v1/entries"
RAW_TABLE = "raw.glucose_entries"
MARTS_TABLE = "marts.glucose_readings"
MAX_ATTEMPTS = 3
RETRY_DELAYS = (5.0, 10.0)  # seconds to wait before the 2nd and 3rd attempt
PUBLISH_BASELINE_MS = 500.0
OUTLIERS_ALLOWED = 2
FRESHNESS_LIMIT_MINUTES = 15.0

ENTRIES_COLUMNS = {
    "_id": "string",
    "device": "string",
    "date": "timestamp",
    "sgv": "int32",
    "direction": "string",
    "type": "string",
    "noise": "int32",
    "_dlt_load_id": "string",
}

# The systems at both ends: declared (with their lineage), never materialized by this pipeline.
nightscout_api = lakelens.asset(
    "nightscout_api",
    kind="external",
    owner="nightscout",
    group="glucose",
    description="Nightscout REST API: continuous glucose monitor uploads.",
)
superset_glucose_dashboard = lakelens.asset(
    "superset_glucose_dashboard",
    deps=["publish_glucose_marts"],
    kind="dashboard",
    owner="clinical-insights",
    group="glucose",
    description="Superset 'Glucose Monitoring' dashboard, read from the PostgreSQL marts.",
)

# What each asset is: who owns it, how fresh it must be, how many rows a run should bring.
dlt_glucose_entries = lakelens.asset(
    "dlt_glucose_entries",
    deps=["nightscout_api"],
    kind="table",
    layer="bronze",
    group="glucose",
    owner="data-platform",
    freshness="2h",
    availability="99.9%",
    expected_rows=487,
    description=f"Raw Nightscout entries merged by dlt into the Iceberg table {RAW_TABLE}.",
)
stg_glucose_entries = lakelens.asset(
    "stg_glucose_entries",
    deps=["dlt_glucose_entries"],
    kind="model",
    layer="silver",
    group="glucose",
    owner="data-platform",
    freshness="2h",
    expected_rows=485,
    description="Typed, deduplicated entries with invalid devices removed (dbt).",
)
fct_glucose_readings = lakelens.asset(
    "fct_glucose_readings",
    deps=["stg_glucose_entries"],
    kind="model",
    layer="gold",
    group="glucose",
    owner="data-platform",
    freshness="1h",
    availability="99.95%",
    expected_rows=485,
    description="One row per glucose reading with derived fields (dbt).",
)
mrt_glucose_readings = lakelens.asset(
    "mrt_glucose_readings",
    deps=["fct_glucose_readings"],
    kind="model",
    layer="marts",
    group="glucose",
    owner="analytics",
    freshness="1h",
    critical=True,
    expected_rows=485,
    description="Readings mart behind the Superset dashboard (dbt).",
)
publish_glucose_marts = lakelens.asset(
    "publish_glucose_marts",
    deps=["mrt_glucose_readings"],
    kind="asset",
    layer="marts",
    group="glucose",
    owner="analytics",
    freshness="1h",
    critical=True,
    description=f"Copies the marts from Iceberg to PostgreSQL ({MARTS_TABLE}).",
)
fct_daily_glucose_metrics = lakelens.asset(
    "fct_daily_glucose_metrics",
    deps=["fct_glucose_readings"],
    kind="model",
    layer="gold",
    group="glucose",
    owner="data-platform",
    freshness="2h",
    expected_rows=1,
    description="Daily time-in-range, mean and variability per patient (dbt).",
)
mrt_glucose_hourly_patterns = lakelens.asset(
    "mrt_glucose_hourly_patterns",
    deps=["fct_daily_glucose_metrics"],
    kind="model",
    layer="marts",
    group="glucose",
    owner="analytics",
    freshness="2h",
    expected_rows=24,
    description="Average glucose by hour of day, rebuilt hourly (dbt).",
)

ASSETS = (
    nightscout_api,
    dlt_glucose_entries,
    stg_glucose_entries,
    fct_glucose_readings,
    mrt_glucose_readings,
    publish_glucose_marts,
    superset_glucose_dashboard,
    fct_daily_glucose_metrics,
    mrt_glucose_hourly_patterns,
)


class GlucosePipeline:
    """One scheduled run loads new CGM entries, then rebuilds the models and marts downstream."""

    def __init__(
        self,
        api: NightscoutAPI,
        lakehouse: Lakehouse,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api = api
        self.lakehouse = lakehouse
        self.sleep = sleep
        self.log = lakelens.get_logger(JOB)
        # Record every asset and its lineage now, the external ones included: no run
        # materializes those, and a lineage graph should not wait for the first run.
        for definition in ASSETS:
            definition.declare()

    def run(self, partition: str, *, hourly: bool) -> None:
        """Run once; an exception (the API is down) fails the run and skips everything downstream."""
        with lakelens.run(
            JOB, partition=partition, trigger="schedule", tags={"cron": "*/5 * * * *"}
        ):
            page = self.load_entries()
            staged = self.stage_entries(page)
            readings = self.build_readings(page, staged)
            mart = self.build_readings_mart(readings)
            self.publish_marts(mart)
            self.build_daily_metrics()
            if hourly:
                self.build_hourly_patterns()

    # -- bronze: dlt ------------------------------------------------------------------------
    @dlt_glucose_entries
    def load_entries(self) -> EntriesPage:
        with lakelens.span("fetch_from_api", endpoint=ENDPOINT) as fetch:
            page = self._get_entries()
            fetch.set("rows_fetched", page.rows)
        self.log.info(
            f"Fetched {page.rows} rows from API", rows=page.rows, latency_ms=page.latency_ms
        )
        # Base units (seconds), as Prometheus expects: `promtool check metrics` rejects _ms.
        lakelens.metric("nightscout_api_latency_seconds", page.latency_ms / 1000, endpoint=ENDPOINT)

        with lakelens.span("pandera_validation", schema="glucose_entries_v1") as validation:
            with lakelens.span("type_checking"):
                self.lakehouse.check_types(page.rows)
            with lakelens.span("constraint_checking"):
                self.lakehouse.check_constraints(page.rows)
            validation.set("rows_valid", page.rows)
        self.log.info(f"Pandera validation: {page.rows}/{page.rows} rows valid", rows=page.rows)
        if page.invalid_device:
            self.log.warning(
                f"{page.invalid_device} rows with invalid device type",
                rows=page.invalid_device,
                column="device",
            )

        with lakelens.span("iceberg_merge", table=RAW_TABLE) as merge:
            with lakelens.span("read_snapshot"):
                snapshot = self.lakehouse.read_snapshot(RAW_TABLE)
            with lakelens.span("merge_operation", snapshot_id=snapshot) as operation:
                result = self.lakehouse.merge(RAW_TABLE, page)
                operation.set("new_snapshot_id", result.snapshot_id)
            with lakelens.span("write_metadata"):
                self.lakehouse.write_metadata(RAW_TABLE, result)
            merge.set("inserts", result.inserts).set("updates", result.updates)
        self.log.info(
            f"Merged to Iceberg ({result.inserts} inserts, {result.updates} updates)",
            table=RAW_TABLE,
            inserts=result.inserts,
            updates=result.updates,
        )
        lakelens.schema(ENTRIES_COLUMNS)
        _record(result.stats, inserts=result.inserts, updates=result.updates)

        with lakelens.span("asset_checks"):
            self.lakehouse.run_checks(RAW_TABLE)
            lakelens.check(
                "glucose_range_check",
                passed=page.out_of_range == 0,
                severity="error",
                valid_rows=page.rows - page.out_of_range,
                total_rows=page.rows,
                message="sgv between 20 and 600 mg/dL",
            )
            lakelens.check(
                "no_duplicates",
                passed=page.duplicates == 0,
                severity="error",
                value=page.duplicates,
                threshold=0,
                total_rows=page.rows,
            )
        return page

    def _get_entries(self) -> EntriesPage:
        """GET the new entries, retrying twice.

        When every attempt fails, the first failure is raised: it is the root cause (a timeout),
        later attempts only saw the API refusing connections.
        """
        failures: list[OSError] = []
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                with lakelens.span(
                    "http.request", method="GET", url=ENDPOINT, attempt=attempt
                ) as request:
                    page = self.api.get_entries()
                    request.set("status_code", 200)
                return page
            except (TimeoutError, ConnectionError) as exc:
                failures.append(exc)
                if attempt < MAX_ATTEMPTS:
                    delay = RETRY_DELAYS[attempt - 1]
                    self.log.warning(
                        f"{exc}; retrying in {delay:.0f}s",
                        attempt=attempt,
                        max_attempts=MAX_ATTEMPTS,
                        error_type=type(exc).__name__,
                    )
                    self.sleep(delay)
        self.log.error(str(failures[-1]), attempt=MAX_ATTEMPTS, max_attempts=MAX_ATTEMPTS)
        self.log.error(f"Retry {MAX_ATTEMPTS}/{MAX_ATTEMPTS} failed, aborting")
        _record(self.api.usage())  # nothing was loaded
        raise failures[0]

    # -- silver and gold: dbt models ------------------------------------------------------------
    @stg_glucose_entries
    def stage_entries(self, page: EntriesPage) -> int:
        valid = page.rows - page.invalid_device
        self._run_model("stg_glucose_entries", valid)
        pass_rate = 100.0 * valid / page.rows
        lakelens.check(
            "validation_pass_rate",
            passed=pass_rate >= 99.0,
            severity="warning",
            value=round(pass_rate, 2),
            threshold=99.0,
            valid_rows=valid,
            total_rows=page.rows,
        )
        return valid

    @fct_glucose_readings
    def build_readings(self, page: EntriesPage, rows: int) -> int:
        self._run_model("fct_glucose_readings", rows)
        age_minutes = round(page.newest_age_seconds / 60, 2)
        lakelens.check(
            "glucose_freshness_check",
            passed=age_minutes <= FRESHNESS_LIMIT_MINUTES,
            severity="error",
            value=age_minutes,
            threshold=FRESHNESS_LIMIT_MINUTES,
            message=f"newest reading {age_minutes:.1f} minutes old",
        )
        within_bounds = page.outliers <= OUTLIERS_ALLOWED
        lakelens.check(
            "statistical_bounds_check",
            passed=within_bounds,
            severity="warning",
            value=page.outliers,
            threshold=OUTLIERS_ALLOWED,
            valid_rows=rows - page.outliers,
            total_rows=rows,
            message=f"{page.outliers} outliers beyond 4σ of the mean",
            mean_mgdl=page.mean_mgdl,
            std_mgdl=page.std_mgdl,
        )
        if not within_bounds:
            self.log.warning(
                f"{page.outliers} glucose outliers detected",
                outliers=page.outliers,
                mean_mgdl=page.mean_mgdl,
                std_mgdl=page.std_mgdl,
            )
        return rows

    @mrt_glucose_readings
    def build_readings_mart(self, rows: int) -> int:
        return self._run_model("mrt_glucose_readings", rows).rows

    @fct_daily_glucose_metrics
    def build_daily_metrics(self) -> None:
        self._run_model("fct_daily_glucose_metrics", 1, updates=1)

    @mrt_glucose_hourly_patterns
    def build_hourly_patterns(self) -> None:
        self._run_model("mrt_glucose_hourly_patterns", 24)

    def _run_model(self, name: str, rows: int, **counts: int) -> QueryStats:
        with lakelens.span("dbt.run_model", model=name, adapter="trino") as model:
            stats = self.lakehouse.run_model(name, rows)
            model.set("rows", stats.rows)
        _record(stats, **counts)
        self.log.info(f"Built {name}: {stats.rows} rows", model=name, rows=stats.rows)
        return stats

    # -- publish to PostgreSQL ------------------------------------------------------------------
    @publish_glucose_marts
    def publish_marts(self, rows: int) -> None:
        with lakelens.span("postgres.copy", table=MARTS_TABLE) as copy:
            stats = self.lakehouse.publish(MARTS_TABLE, rows)
            copy.set("rows", stats.rows)
        _record(stats, inserts=stats.rows)
        elapsed_ms = (copy.duration_seconds or 0.0) * 1000
        self.log.info(
            f"Published {stats.rows} rows to {MARTS_TABLE}", rows=stats.rows, table=MARTS_TABLE
        )
        if elapsed_ms > 2 * PUBLISH_BASELINE_MS:
            self.log.warning(
                f"publish_glucose_marts running slow ({format_duration(elapsed_ms / 1000)} vs "
                f"{format_duration(PUBLISH_BASELINE_MS / 1000)} baseline)",
                duration_ms=round(elapsed_ms, 3),
                baseline_ms=PUBLISH_BASELINE_MS,
            )


def _record(stats: QueryStats, **counts: Any) -> None:
    """Record what the engine reported for the current materialization."""
    lakelens.record(
        rows=stats.rows,
        bytes=stats.bytes,
        cpu_seconds=stats.cpu_seconds,
        peak_memory_bytes=stats.peak_memory_bytes,
        **counts,
    )
