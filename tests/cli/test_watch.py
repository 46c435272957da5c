"""`--watch N`: the real commands redraw until Ctrl-C, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from typer.testing import CliRunner

from lakelens.cli.main import app

runner = CliRunner()

# The command, the title of its frames, and a line every frame of it shows for `story`.
WATCHED = [
    (["metrics", "summary"], "lakelens metrics summary", "Platform Metrics Summary (last 24h)"),
    (["metrics"], "lakelens metrics summary", "Platform Metrics Summary (last 24h)"),
    (["incidents", "list"], "lakelens incidents list", "Asset Materialization Failed: orders"),
    (["alerts", "firing"], "lakelens alerts firing", "orders failed: OSError: disk full"),
]


def test_watch_redraws_until_ctrl_c_which_exits_quietly(story) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "lakelens", *args, "--watch", "1", "--tz", "Europe/Paris"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ.copy(),
        )
        for args, _title, _line in WATCHED
    ]
    outputs: list[list[str]] = [[] for _ in procs]
    drawn = [threading.Event() for _ in procs]

    def read(index: int) -> None:
        title = WATCHED[index][1]
        stdout = procs[index].stdout
        assert stdout is not None
        for line in stdout:
            outputs[index].append(line)
            if sum(f"Every 1s: {title} · " in seen for seen in outputs[index]) >= 2:
                drawn[index].set()

    readers = [threading.Thread(target=read, args=(i,), daemon=True) for i in range(len(procs))]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + 30  # two frames take about 2.5 s; start-up may be slow here
    for event in drawn:
        event.wait(timeout=max(0.0, deadline - time.monotonic()))
    for proc in procs:
        proc.send_signal(signal.SIGINT)
    for (args, title, line), proc, reader, output in zip(
        WATCHED, procs, readers, outputs, strict=True
    ):
        _out, err = proc.communicate(timeout=30)
        reader.join(timeout=10)
        text = "".join(output)
        assert proc.returncode == 0, (args, err)
        assert err == "", (args, err)  # no traceback, no "Aborted!"
        headers = [x for x in output if x.startswith(f"Every 1s: {title} · ")]
        assert len(headers) >= 2, (args, text)
        assert all(x.rstrip().endswith("CET · Ctrl-C stops") for x in headers), headers
        assert text.count(line) >= 2, (args, text)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["metrics", "summary", "--watch", "0"], "Invalid --watch '0': give the seconds"),
        (["incidents", "list", "--watch", "soon"], "Invalid --watch 'soon': give the seconds"),
        (["alerts", "firing", "--watch", "0.5s"], "Invalid --watch '0.5s': give the seconds"),
        (["alerts", "firing", "--watch", "2", "--json"], "cannot be combined with --json"),
        (["incidents", "list", "--json", "--watch", "2"], "cannot be combined with --json"),
        (["metrics", "--watch", "2", "asset", "x"], "--watch goes after the command"),
    ],
)
def test_a_bad_watch_is_one_line_and_exit_status_2(tmp_path, args, message) -> None:
    result = runner.invoke(app, [*args, "--home", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
