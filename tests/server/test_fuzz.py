"""Schemathesis fuzzes every operation of /openapi.json: bad input is a 4xx, never a 500."""

from __future__ import annotations

import time
from typing import Any

import pytest

EXAMPLES_PER_OPERATION = 60


@pytest.mark.slow
@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_fuzzing_the_openapi_finds_no_server_error(pipeline: Any) -> None:
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings

    from lakelens.server import create_app

    config, store, info = pipeline
    app = create_app(config, store, clock=lambda: info["now"])
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    calls = 0
    began = time.monotonic()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15

    def fuzz(operation: Any) -> None:
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            nonlocal calls
            calls += 1
            response = case.call()
            if response.status_code >= 500:
                failures.append(
                    f"{operation.method.upper()} {operation.path} → {response.status_code}: "
                    f"{case.as_curl_command()}"
                )

        run()

    for operation in operations:
        if not operation.path.endswith("/logs/stream"):  # never ends by design
            fuzz(operation)
    assert not failures, "\n".join(failures[:10])
    assert calls >= 100
    assert time.monotonic() - began < 60
