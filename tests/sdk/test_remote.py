"""SDK remote mode: batches go to a server through a spool; an outage loses and duplicates nothing."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import lakelens
from _support import UvicornThread, bound_socket
from lakelens.config import Settings, load_settings
from lakelens.events import Batch
from lakelens.ingest.native_write import dumps_batch
from lakelens.sdk._remote import RemoteSink, SpoolFile, remote_sink_factory
from lakelens.sdk._runtime import RT
from lakelens.sdk._writer import Writer
from lakelens.store import Store, reads, schema


class Server:
    """The lakelens app under uvicorn in a thread, on `sock` (a new port by default): a test
    that starts it late holds the port bound meanwhile (`bound_socket()`), so that the SDK's
    posts are refused and no other test's server takes the port."""

    def __init__(
        self, store: Store, sock: socket.socket | None = None, token: str | None = None
    ) -> None:
        from lakelens.server import create_app

        settings = store.settings.replace(api_token=token)
        self._server = UvicornThread(create_app(settings, store), sock)
        self.url = self._server.url

    def start(self) -> Server:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()


@pytest.fixture
def server_store(store_url: str, tmp_path: Path) -> Iterator[Store]:
    settings = load_settings(
        home=str(tmp_path / "server"), database_url=store_url, log_format="none"
    )
    store = Store(settings=settings)
    yield store
    store.close()


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.stop()


def remote_sdk(home: Path, url: str, token: str | None = None) -> Settings:
    """Point the SDK at `url` (what sdk/_runtime.py does when LAKELENS_URL is set)."""
    settings = load_settings(home=str(home), url=url, api_token=token, log_format="none")
    lakelens.configure(settings=settings)
    RT._writer = Writer(
        remote_sink_factory(settings),
        queue_size=settings.queue_size,
        batch_size=settings.batch_size,
        flush_interval=0.05,
    )
    return settings


def record(runs: int, logs_per_run: int) -> list[str]:
    log = lakelens.get_logger("remote-test")
    ids = []
    for n in range(runs):
        with lakelens.run("remote_job", partition=f"p{n}") as run:
            ids.append(run.run_id)
            with lakelens.asset("remote_asset", deps=["upstream"]):
                for i in range(logs_per_run):
                    log.info(f"run {n} line {i}")
                lakelens.metric("remote_rows", 1, kind="counter")
                lakelens.check("rows_positive", passed=True)
                lakelens.record(rows=logs_per_run)
    return ids


def _counts(store: Store) -> dict[str, int]:
    with store.connect() as conn:
        return {
            table.name: int(
                conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            )
            for table in (
                schema.runs,
                schema.materializations,
                schema.check_results,
                schema.logs,
                schema.metric_points,
            )
        }


def _sink() -> RemoteSink:
    assert RT._writer is not None
    sink = RT._writer._sink
    assert isinstance(sink, RemoteSink)
    return sink


@pytest.fixture(autouse=True)
def _reset_sdk(tmp_path: Path) -> Iterator[None]:
    yield
    writer = RT._writer
    lakelens.configure(settings=load_settings(home=str(tmp_path / "after"), log_format="none"))
    sink = getattr(writer, "_sink", None)
    if isinstance(sink, RemoteSink):
        sink.close()


def test_remote_mode_delivers_every_event_once(
    server_store: Store, servers: list[Server], tmp_path: Path
) -> None:
    server = Server(server_store, token="tok").start()
    servers.append(server)
    remote_sdk(tmp_path / "client", server.url, token="tok")
    run_ids = record(runs=3, logs_per_run=50)
    assert lakelens.flush(30)
    sink = _sink()
    assert sink.drain(30)
    counts = _counts(server_store)
    # Each run also logs "started" and "succeeded" lines for its asset.
    assert counts["runs"] == 3 and counts["materializations"] == 3 and counts["check_results"] == 3
    assert counts["logs"] == 3 * 52
    assert counts["metric_points"] == 3
    with server_store.connect() as conn:
        stored = set(conn.execute(sa.select(schema.runs.c.run_id)).scalars())
    assert stored == set(run_ids)
    assert sink.stats()["rejected_events"] == 0


def test_server_down_for_a_while_loses_and_duplicates_nothing(
    server_store: Store, servers: list[Server], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    down = bound_socket()
    remote_sdk(tmp_path / "client", f"http://127.0.0.1:{down.getsockname()[1]}")
    record(runs=2, logs_per_run=100)
    assert lakelens.flush(30)  # spooled: the pipeline never waits for the server
    sink = _sink()
    assert sink.pending() > 0
    spool = list((tmp_path / "client" / "spool").glob("spool-*.log"))
    assert len(spool) == 1 and spool[0].read_bytes().startswith(b"B ")
    record(runs=1, logs_per_run=100)  # more while it is still down
    assert lakelens.flush(30)
    time.sleep(1.0)
    servers.append(Server(server_store, down).start())
    assert sink.drain(40), sink.stats()
    counts = _counts(server_store)
    assert counts["runs"] == 3
    assert counts["logs"] == 3 * 102
    assert counts["check_results"] == 3
    err = capfd.readouterr().err
    assert "retrying" in err and "reachable again" in err


def test_a_batch_whose_answer_was_lost_is_not_stored_twice(
    server_store: Store, servers: list[Server], tmp_path: Path
) -> None:
    import httpx

    server = Server(server_store).start()
    servers.append(server)
    batch = Batch()
    batch.logs.extend(
        (float(i), 20, f"line {i}", None, None, None, None, None, None, None) for i in range(10)
    )
    body = dumps_batch(batch)
    assert (
        httpx.post(
            f"{server.url}/api/v1/events", content=body, headers={"Idempotency-Key": "lost-ack"}
        ).status_code
        == 200
    )
    # A process spooled the batch, the server committed it, and the process died before
    # writing the acknowledgement; the next process finds the spool file.
    spool_dir = tmp_path / "client" / "spool"
    spool_dir.mkdir(parents=True)
    (spool_dir / "spool-1-dead.log").write_bytes(b"B lost-ack " + body + b'\nB torn-tail [{"typ')
    sink = RemoteSink(server.url, home=tmp_path / "client")
    try:
        assert sink.drain(20)
        assert _counts(server_store)["logs"] == 10
        assert not (spool_dir / "spool-1-dead.log").exists()
    finally:
        sink.close()


def test_a_dead_process_spool_is_delivered_by_the_next_one(
    server_store: Store, servers: list[Server], tmp_path: Path
) -> None:
    down = bound_socket()
    port = down.getsockname()[1]
    home = tmp_path / "client"
    script = textwrap.dedent(
        f"""
        import lakelens
        from lakelens.config import load_settings
        from lakelens.sdk._remote import remote_sink_factory
        from lakelens.sdk._runtime import RT
        from lakelens.sdk._writer import Writer

        settings = load_settings(home={str(home)!r}, url="http://127.0.0.1:{port}", log_format="none")
        lakelens.configure(settings=settings)
        RT._writer = Writer(remote_sink_factory(settings), flush_interval=0.05)
        log = lakelens.get_logger("child")
        with lakelens.run("child_job"):
            for i in range(25):
                log.warning(f"child line {{i}}")
        assert lakelens.flush(30)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert result.returncode == 0, result.stderr
    assert "retrying" in result.stderr
    servers.append(Server(server_store, down).start())
    sink = RemoteSink(f"http://127.0.0.1:{port}", home=home)
    try:
        assert sink.drain(20)
    finally:
        sink.close()
    counts = _counts(server_store)
    assert counts["runs"] == 1
    with server_store.connect() as conn:
        lines = conn.execute(
            sa.select(sa.func.count()).where(schema.logs.c.message.like("child line %"))
        ).scalar_one()
    assert lines == 25
    assert list((home / "spool").glob("spool-*.log")) == []


def test_a_batch_the_server_refuses_is_set_aside_and_the_queue_moves_on(
    server_store: Store, servers: list[Server], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A batch refused with a 4xx goes to spool/rejected/ (reported once); the ones behind it
    are delivered."""
    server = Server(server_store).start()
    servers.append(server)
    sink = RemoteSink(server.url, home=tmp_path / "client", deliver_inline=False)
    try:
        sink.own.append("garbage", b"[{not json")
        sink.own.append("good", b'[{"type":"run","run_id":"after","job":"j"}]')
        assert sink.drain(20)
        assert sink.stats()["rejected_batches"] == 1
    finally:
        sink.close()
    rejected = tmp_path / "client" / "spool" / "rejected"
    assert (rejected / "garbage.json").read_bytes() == b"[{not json"
    assert (rejected / "garbage.reason.txt").read_text().startswith("400: Malformed JSON")
    err = capfd.readouterr().err
    assert err.count("refused a batch (400") == 1
    assert f"kept it in {rejected}" in err
    with server_store.connect() as conn:
        assert [r.run_id for r in reads.runs(conn)] == ["after"]


def test_spool_file_offsets_and_acknowledgements(tmp_path: Path) -> None:
    spool = SpoolFile.create(tmp_path)
    spool.append("a", b"[1]")
    spool.append("bb", b"[22]")
    spool.acknowledge("a")
    assert spool.read("bb") == b"[22]"
    assert spool.oldest() == ["bb"]
    path = spool.path
    spool.close()
    adopted = SpoolFile.adopt(path)
    assert adopted is not None
    assert adopted.oldest() == ["bb"] and adopted.read("bb") == b"[22]"
    adopted.close()


def test_a_wrong_url_is_a_config_error(tmp_path: Path) -> None:
    from lakelens.errors import ConfigError

    with pytest.raises(ConfigError, match="Invalid LAKELENS_URL"):
        RemoteSink("ftp://example", home=tmp_path)
