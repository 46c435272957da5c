"""`lakelens.check()`, `lakelens.metric()` and `lakelens.schema()`: quality, custom metrics, schemas."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from lakelens.errors import InvalidArgumentError, LakelensError
from lakelens.model import CheckResult, MetricPoint, SchemaSnapshot, from_epoch
from lakelens.sdk._runtime import FRAME, RT
from lakelens.units import parse_severity, require_count

__all__ = ["check", "metric", "schema"]

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def _number(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidArgumentError(f"Invalid {name}={value!r}: expected a number.")
    try:
        number = float(value)  # numpy scalars and Decimal too
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"Invalid {name}={value!r}: expected a number.") from None
    if not math.isfinite(number):
        raise InvalidArgumentError(f"Invalid {name}={value!r}: expected a finite number.")
    return number


def _target_asset(asset: str | None, call: str) -> tuple[str, Any]:
    run, mat, _span = FRAME.get()
    if run is None:
        run = RT.ambient_run()
    if asset is None:
        if mat is None:
            raise LakelensError(
                f"lakelens.{call}() needs an asset: call it inside an asset materialization "
                "or pass asset='name'."
            )
        asset = mat.name
    elif not isinstance(asset, str) or not asset:
        raise InvalidArgumentError(f"Invalid asset={asset!r}: expected an asset name.")
    return asset, run


def check(
    name: str,
    passed: bool,
    *,
    severity: str = "warning",
    value: float | None = None,
    threshold: float | None = None,
    valid_rows: int | None = None,
    total_rows: int | None = None,
    message: str | None = None,
    asset: str | None = None,
    **attributes: Any,
) -> CheckResult:
    """Record a data quality check: `lakelens.check("glucose_range_check", passed=True, severity="error")`.

    Severity is info, warning (default), error or critical (P1–P4 accepted). The asset is the
    one being materialized unless `asset=` names another.
    """
    if not isinstance(name, str) or not name:
        raise InvalidArgumentError(f"Invalid check name {name!r}: expected a non-empty string.")
    if not isinstance(passed, bool):
        if type(passed).__name__ in ("bool_", "bool"):  # numpy.bool_
            passed = bool(passed)
        else:
            raise InvalidArgumentError(
                f"Invalid passed={passed!r} for check {name!r}: expected True or False."
            )
    result_severity = parse_severity(severity)
    checked_value = _number(value, "value")
    checked_threshold = _number(threshold, "threshold")
    valid = require_count(valid_rows, name="valid_rows")
    total = require_count(total_rows, name="total_rows")
    if valid is not None and total is not None and valid > total:
        raise InvalidArgumentError(
            f"Invalid valid_rows={valid} for check {name!r}: more than total_rows={total}."
        )
    target, run = _target_asset(asset, "check")
    result = CheckResult(
        id=RT.new_id(),
        asset=target,
        name=name,
        passed=passed,
        severity=result_severity,
        time=from_epoch(RT.clock()),
        run_id=run.run_id if run is not None else None,
        value=checked_value,
        threshold=checked_threshold,
        valid_rows=valid,
        total_rows=total,
        message=message,
        attributes=attributes,
    )
    RT.writer.put(result)
    return result


def metric(name: str, value: float, *, kind: str = "gauge", **labels: Any) -> None:
    """Record a custom metric point: `lakelens.metric("queue_size", 42, kind="gauge", queue="articles")`.

    A gauge records the current value; a counter records an increment (>= 0) that is summed.
    """
    if not isinstance(name, str) or not _METRIC_NAME.fullmatch(name):
        raise InvalidArgumentError(
            f"Invalid metric name {name!r}: use letters, digits, '_' and ':' (not starting with a digit)."
        )
    if kind not in ("gauge", "counter"):
        raise InvalidArgumentError(
            f"Invalid kind={kind!r} for metric {name!r}: use 'gauge' or 'counter'."
        )
    number = _number(value, "value")
    assert number is not None
    if kind == "counter" and number < 0:
        raise InvalidArgumentError(
            f"Invalid value={value!r} for counter {name!r}: a counter only goes up."
        )
    for label in labels:
        if not _LABEL_NAME.fullmatch(label) or label.startswith("__"):
            raise InvalidArgumentError(f"Invalid label name {label!r} for metric {name!r}.")
    run, mat, _span = FRAME.get()
    if run is None:
        run = RT.ambient_run()
    RT.writer.put_other(
        MetricPoint(
            name=name,
            value=number,
            kind=kind,
            time=from_epoch(RT.clock()),
            labels={k: str(v) for k, v in labels.items()},
            run_id=run.run_id if run is not None else None,
            asset=mat.name if mat is not None else None,
        )
    )


def schema(
    columns: Mapping[str, str] | Iterable[tuple[str, str]], *, asset: str | None = None
) -> str:
    """Record the columns (name → type) of an asset; a change is schema drift. Returns the hash."""
    items = list(columns.items()) if isinstance(columns, Mapping) else list(columns)
    normalized: list[tuple[str, str]] = []
    for item in items:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise InvalidArgumentError(
                f"Invalid column {item!r}: expected (name, type) pairs or a dict."
            )
        normalized.append((str(item[0]), str(item[1])))
    target, run = _target_asset(asset, "schema")
    digest = hashlib.sha256(json.dumps(sorted(normalized)).encode()).hexdigest()[:32]
    RT.writer.put(
        SchemaSnapshot(
            asset=target,
            columns=normalized,
            time=from_epoch(RT.clock()),
            hash=digest,
            run_id=run.run_id if run is not None else None,
        )
    )
    return digest
