"""`lakelens logs`: filters in SQL, JSON Lines, and --follow across processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

from typer.testing import CliRunner

from lakelens.cli.main import app

runner = CliRunner()


def lines(home, *args: str) -> list[dict]:
    result = runner.invoke(app, ["logs", "--home", str(home), "--json", *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def test_filters(pipeline_home) -> None:
    home, info = pipeline_home
    failed = info["run_ids"][2]
    errors = lines(home, "--level", "ERROR")
    assert [e["message"] for e in errors] == [
        "Connection refused to api.example",
        "dlt_entries failed: Connection timeout after 30s",
        "run pipeline failed: ApiTimeout: Connection timeout after 30s",
    ]
    warnings = lines(home, "--level", "warning", "--asset", "dlt_entries")
    assert [w["level"] for w in warnings] == ["WARNING", "ERROR", "ERROR"]
    assert {r["run_id"] for r in lines(home, "--run-id", failed[:6])} == {failed}
    assert [r["message"] for r in lines(home, "--grep", "FETCHED 487")] == [
        "Fetched 487 rows from API"
    ] * 2
    assert lines(home, "--since", "15m", "--grep", "fetched") == []
    assert len(lines(home, "--since", "4h", "--until", "15m", "--grep", "fetched")) == 2
    assert lines(home, "--job", "other") == []
    newest = lines(home, "-n", "2")
    assert [r["message"] for r in newest] == [
        "dlt_entries failed: Connection timeout after 30s",
        "run pipeline failed: ApiTimeout: Connection timeout after 30s",
    ]
    record = lines(home, "--grep", "Fetched")[0]
    assert set(record) == {
        "id",
        "time",
        "level",
        "message",
        "logger",
        "run_id",
        "asset",
        "job",
        "trace_id",
        "span_id",
        "attributes",
    }
    assert record["attributes"] == {"rows": 487} and record["logger"] == "pipe"


def test_text_output(pipeline_home) -> None:
    home, _ = pipeline_home
    result = runner.invoke(app, ["logs", "--home", str(home), "--level", "ERROR", "-n", "1"])
    assert result.exit_code == 0
    line = result.output.strip()
    assert line.startswith("[") and "] ERROR   pipeline: run pipeline failed: ApiTimeout" in line
    # The SDK's fields follow the message (the README's `log.info("fetched", rows=…)`).
    fetched = runner.invoke(app, ["logs", "--home", str(home), "--grep", "Fetched 487"])
    assert "Fetched 487 rows from API  rows=487" in fetched.output, fetched.output


def test_empty_store_and_bad_input(tmp_path) -> None:
    from lakelens.store import Store

    missing = runner.invoke(app, ["logs", "--home", str(tmp_path / "typo")])
    assert missing.exit_code == 1 and "No lakelens store at " in missing.output
    assert not (tmp_path / "typo").exists()  # a read never creates a store
    Store(f"sqlite:///{tmp_path / 'lakelens.db'}").engine.dispose()  # an empty store
    empty = runner.invoke(app, ["logs", "--home", str(tmp_path)])
    assert empty.exit_code == 0 and "No logs recorded yet — try `lakelens demo`." in empty.output
    for args, message in [
        (["--since", "yesterdayy"], "Invalid --since 'yesterdayy'"),
        (["--level", "LOUD"], "Invalid --level 'LOUD'"),
        (["--asset", "nope"], "Unknown asset 'nope'"),
    ]:
        result = runner.invoke(app, ["logs", "--home", str(tmp_path), *args])
        assert result.exit_code == 1 and message in result.output, result.output


WRITER = textwrap.dedent(
    """
    import sys, time, lakelens
    lakelens.configure(home=sys.argv[1], database_url=sys.argv[2] or None, log_format="none", batch_size=250)
    log = lakelens.get_logger("writer")
    with lakelens.run("tail_job"):
        for burst in range(4):
            for i in range(500):
                log.info("tail", n=burst * 500 + i)
            lakelens.flush()
            time.sleep(0.3)
    """
)


def _follow(home, database_url: str = "") -> None:
    env = dict(os.environ, LAKELENS_HOME=str(home))
    if database_url:
        env["LAKELENS_DATABASE_URL"] = database_url
    tail = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lakelens",
            "logs",
            "--follow",
            "--json",
            "--grep",
            "tail",
            "-n",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    seen: list[int] = []
    done = threading.Event()

    def read() -> None:
        assert tail.stdout is not None
        for line in tail.stdout:
            seen.append(json.loads(line)["attributes"]["n"])
            if len(seen) >= 2000:
                break
        done.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(1.0)  # the tail is running before the writer starts
    subprocess.run([sys.executable, "-c", WRITER, str(home), database_url], check=True, timeout=120)
    done.wait(timeout=30)
    tail.send_signal(signal.SIGINT)
    _out, err = tail.communicate(timeout=30)
    assert seen == list(range(2000)), (
        f"{len(seen)} records, first gaps: {sorted(set(range(2000)) - set(seen))[:5]}"
    )
    assert tail.returncode == 0, err
    assert "Traceback" not in err


def test_follow_prints_records_from_another_process_once_each(tmp_path) -> None:
    from lakelens.store import Store

    Store(f"sqlite:///{tmp_path / 'lakelens.db'}").close()
    _follow(tmp_path)


def test_follow_on_postgres(postgres_url, tmp_path) -> None:
    from lakelens.store import Store

    store = Store(postgres_url)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM logs")
    store.close()
    _follow(tmp_path, postgres_url)
