"""`lakelens serve` on PostgreSQL through a proxy that blackholes or resets the connections."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


class Traffic:
    """One client posting a one-log batch at a time, and one polling /readyz, in threads."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.tag = uuid.uuid4().hex[:8]
        self.acked: list[tuple[float, str]] = []
        self.failed: list[tuple[float, str]] = []
        self.ready: list[tuple[float, int]] = []
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._ingest, daemon=True),
            threading.Thread(target=self._readyz, daemon=True),
        ]

    def __enter__(self) -> Traffic:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(40)

    def _ingest(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            for i in range(100_000):
                if self.stop.is_set():
                    return
                key = f"{self.tag}-{i}"
                try:
                    response = http.post(
                        "/api/v1/events",
                        json=[{"type": "log", "message": key}],
                        headers={"Idempotency-Key": key},
                    )
                    outcome = str(response.status_code)
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                if outcome == "200":
                    self.acked.append((time.monotonic(), key))
                    self.stop.wait(0.05)
                else:
                    self.failed.append((time.monotonic(), outcome))
                    self.stop.wait(0.2)

    def _readyz(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            while not self.stop.wait(0.5):
                try:
                    status = http.get("/readyz").status_code
                except httpx.HTTPError:
                    status = 0
                self.ready.append((time.monotonic(), status))

    def acked_after(self, moment: float, timeout: float) -> float | None:
        """Seconds from `moment` to the first acknowledgement after it (None: none in time)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            later = [at for at, _key in self.acked if at > moment]
            if later:
                return later[0] - moment
            time.sleep(0.05)
        return None


def _stored(postgres_url: str, tag: str) -> set[str]:
    from lakelens.store.engine import create_store_engine

    engine = create_store_engine(postgres_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT message FROM logs WHERE message LIKE :tag"), {"tag": f"{tag}-%"}
            )
            return {row[0] for row in rows}
    finally:
        engine.dispose()


def test_ingest_recovers_within_10s_after_a_half_open_outage(
    serve: Any, fault_proxy: Any, postgres_url: str
) -> None:
    server = serve(LAKELENS_DATABASE_URL=fault_proxy.url(postgres_url))
    with Traffic(server.url) as traffic:
        assert traffic.acked_after(time.monotonic(), 10) is not None, server.output()
        outage = time.monotonic()
        fault_proxy.blackhole()
        time.sleep(15)
        recovery = time.monotonic()
        fault_proxy.restore()
        took = traffic.acked_after(recovery, 25)
        time.sleep(1.5)  # a few more batches and readiness probes after the recovery
    print(f"ingest recovered {took}s after PostgreSQL did; {len(traffic.acked)} acked")
    assert took is not None and took < 10, (took, traffic.failed[-5:], server.output()[-3000:])
    during = [status for at, status in traffic.ready if outage + 6 < at < recovery]
    assert during and all(status == 503 for status in during), traffic.ready
    assert traffic.ready[-1][1] == 200, traffic.ready[-5:]
    missing = {key for _at, key in traffic.acked} - _stored(postgres_url, traffic.tag)
    assert not missing, f"{len(missing)} acknowledged batches are not in the store"


def test_ingest_recovers_at_once_after_the_connections_are_reset(
    serve: Any, fault_proxy: Any, postgres_url: str
) -> None:
    server = serve(LAKELENS_DATABASE_URL=fault_proxy.url(postgres_url))
    with Traffic(server.url) as traffic:
        assert traffic.acked_after(time.monotonic(), 10) is not None, server.output()
        reset = time.monotonic()
        fault_proxy.reset()
        took = traffic.acked_after(reset, 10)
        time.sleep(1)
    print(f"ingest recovered {took}s after the reset")
    assert took is not None and took < 2, (took, traffic.failed[-5:])
    missing = {key for _at, key in traffic.acked} - _stored(postgres_url, traffic.tag)
    assert not missing, f"{len(missing)} acknowledged batches are not in the store"
