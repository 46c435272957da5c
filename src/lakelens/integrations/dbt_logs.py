"""dbt's own log lines, recorded in the lakelens run that invoked dbt."""

from __future__ import annotations

from typing import Any

__all__ = ["log_callback"]

_DBT_LEVELS = {"debug": 10, "info": 20, "warn": 30, "error": 40}


def log_callback(event: Any) -> None:
    """A dbtRunner callback: dbt's own log lines join the lakelens run they happen in.

        from dbt.cli.main import dbtRunner
        from lakelens.integrations.dbt import log_callback

        with lakelens.run("orchestrated"):          # or inside a Dagster op's lakelens_run(context)
            dbtRunner(callbacks=[log_callback]).invoke(["build"])

    Lines below LAKELENS_LOG_LEVEL are skipped; outside any lakelens run nothing is recorded.
    """
    from lakelens.sdk._runtime import FRAME, RT

    info = getattr(event, "info", None)
    message = getattr(info, "msg", "") if info is not None else ""
    if not message:
        return
    level = _DBT_LEVELS.get(str(getattr(info, "level", "info")), 20)
    if level < RT.settings.log_level_number:
        return
    run, mat, span = FRAME.get()
    if run is None:
        run = RT.ambient_run()
    if run is None:
        return
    node = getattr(getattr(event, "data", None), "node_info", None)
    asset = (getattr(node, "node_name", "") or None) if node is not None else None
    RT.writer.put_log(
        (
            RT.clock(),
            level,
            str(message),
            "dbt",
            run.run_id,
            asset or (mat.name if mat is not None else None),
            run.job,
            span.trace_id if span is not None else run.trace_id,
            span.span_id if span is not None else None,
            {
                "dbt.event": getattr(info, "name", None),
                "dbt.invocation_id": getattr(info, "invocation_id", None),
            },
        )
    )
