"""Bad SDK input fails at the call site with one clear LakelensError, before anything is written."""

from __future__ import annotations

import pytest

import lakelens
from lakelens.errors import InvalidArgumentError, LakelensError
from lakelens.store import reads


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: lakelens.asset("a", freshness="2 hourz"),
            r"Invalid freshness='2 hourz': expected .*'2h'",
        ),
        (lambda: lakelens.asset("a", freshness=-5), r"Invalid freshness=-5: it must be positive"),
        (
            lambda: lakelens.asset("a", kind="tabel"),
            r"Invalid kind='tabel' for asset 'a': use one of",
        ),
        (lambda: lakelens.asset(""), r"Invalid asset name ''"),
        (lambda: lakelens.asset("a", availability="120%"), r"between 0% and 100%"),
        (
            lambda: lakelens.check("c", passed=True, severity="urgent", asset="a"),
            r"Invalid severity='urgent': use one of info, warning, error, critical \(or P1–P4\)",
        ),
        (lambda: lakelens.check("c", passed="yes", asset="a"), r"expected True or False"),
        (
            lambda: lakelens.check("c", passed=True, valid_rows=5, total_rows=3, asset="a"),
            r"more than total_rows=3",
        ),
        (lambda: lakelens.metric("queue size", 1), r"Invalid metric name 'queue size'"),
        (lambda: lakelens.metric("q", 1, kind="histogram"), r"use 'gauge' or 'counter'"),
        (lambda: lakelens.metric("q", -1, kind="counter"), r"a counter only goes up"),
        (lambda: lakelens.metric("q", float("nan")), r"expected a finite number"),
        (lambda: lakelens.run(""), r"Invalid job=''"),
        (lambda: lakelens.span(""), r"Invalid span name ''"),
    ],
)
def test_invalid_arguments_raise_clear_errors(call, message) -> None:
    with pytest.raises(InvalidArgumentError, match=message) as info:
        call()
    assert "\n" not in str(info.value)


def test_record_rejects_non_integer_rows_and_writes_nothing(sdk) -> None:
    with lakelens.run("job"), lakelens.asset("table_a") as mat:
        mat.record(rows=10)
        with pytest.raises(
            InvalidArgumentError, match=r"Invalid rows='487': expected a whole number"
        ):
            lakelens.record(rows="487", bytes=100)
        with pytest.raises(InvalidArgumentError, match=r"Invalid rows=4.5"):
            lakelens.record(rows=4.5)
        with pytest.raises(InvalidArgumentError, match=r"Invalid bytes=-1: it cannot be negative"):
            lakelens.record(bytes=-1)
    lakelens.flush()
    with sdk.connect() as conn:
        (row,) = reads.materializations(conn)
    # The bad calls changed nothing: neither rows nor the bytes passed beside the bad rows.
    assert (row.rows, row.bytes) == (10, None)


def test_record_and_check_outside_an_asset_explain_themselves() -> None:
    with pytest.raises(
        LakelensError, match=r"lakelens.record\(\) needs a materialization in progress"
    ):
        lakelens.record(rows=1)
    with pytest.raises(LakelensError, match=r"lakelens.check\(\) needs an asset"):
        lakelens.check("c", passed=True)
