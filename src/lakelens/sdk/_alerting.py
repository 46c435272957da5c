"""Alerts from the pipeline process itself: a failed run triggers one evaluation and delivery.

So alerts go out even when no server or cron job runs. It happens in a background thread and
never blocks or fails the pipeline. The evaluation queues every notification in the outbox
(durably); the thread then sends what it can within a second of the failure, and at exit the
process waits at most a second for it. What is not sent by then stays pending in the outbox for
a server or `lakelens alerts run`.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

from lakelens.sdk._runtime import RT

__all__ = ["alert_after_failure", "wait_for_alerts"]

_threads: list[threading.Thread] = []
# Sends start at most this long after the failure, and at exit the process waits at most this
# long in all (LAKELENS_ALERT_EXIT_WAIT, seconds). Slack takes about one message a second: the
# rest waits in the outbox.
EXIT_WAIT_SECONDS = 1.0
EVALUATED_GRACE = 0.5


def exit_wait() -> float:
    """LAKELENS_ALERT_EXIT_WAIT, else one second: on a loaded machine, where loading alerting
    alone can take longer than that, a larger value lets the process send before it exits."""
    raw = os.environ.get("LAKELENS_ALERT_EXIT_WAIT", "")
    try:
        seconds = float(raw) if raw.strip() else EXIT_WAIT_SECONDS
    except ValueError:
        print(
            f"lakelens: LAKELENS_ALERT_EXIT_WAIT={raw!r} is not a number of seconds; using "
            f"{EXIT_WAIT_SECONDS:g}.",
            file=sys.stderr,
        )
        return EXIT_WAIT_SECONDS
    return min(max(seconds, 0.0), 300.0)


def _configured() -> bool:
    """True when alerting has somewhere to send (the same rule as alerts/config.py uses)."""
    if os.environ.get("LAKELENS_ALERT_IN_PROCESS", "1").lower() in ("0", "false", "no"):
        return False
    from lakelens.alerts.config import load_alerting

    try:
        return load_alerting(RT.settings).enabled
    except Exception as exc:  # a bad alerting config must not break the pipeline
        print(
            f"lakelens: alerting is misconfigured ({exc}); no alerts from this run.",
            file=sys.stderr,
        )
        return False


def _evaluate(store: Any, writer: Any, deadline: float) -> None:
    try:
        if writer is not None:
            writer.flush(timeout=30.0)
        from lakelens.alerts.service import AlertingService

        service = AlertingService(store)
        try:
            service.engine.evaluate(group_wait=0.0)  # the run has ended: its findings are in
            # Loading alerting and evaluating take a few hundred ms of the budget on a cold
            # start: sends may still start up to half a second after the evaluation. The exit
            # wait stays bounded by exit_wait() whatever happens here.
            service.worker.run_once(deadline=max(deadline, time.monotonic() + EVALUATED_GRACE))
        finally:
            service.close()
    except Exception as exc:  # never let alerting break the pipeline
        print(
            f"lakelens: could not send alerts for the failed run ({type(exc).__name__}: {exc})",
            file=sys.stderr,
        )


def alert_after_failure() -> None:
    """Start an evaluation for a run that just failed, when alert destinations are configured
    and the SDK keeps wall-clock time."""
    if RT.clock is not time.time:
        # Recording history with a simulated clock (lakelens.testing.recording, the demo):
        # evaluating at wall-clock now against a half-recorded past gives false alerts.
        return
    if not _configured():
        return
    deadline = time.monotonic() + exit_wait()
    # The store and writer of this run: the SDK may be pointed elsewhere by the time it runs.
    thread = threading.Thread(
        target=_evaluate,
        args=(RT.store, RT._writer, deadline),
        name="lakelens-alerts",
        daemon=True,
    )
    _threads.append(thread)
    thread.start()


def wait_for_alerts(timeout: float | None = None) -> None:
    """Give running evaluations up to `timeout` seconds (default: `exit_wait()`) in all to
    finish (called at exit)."""
    end = time.monotonic() + (exit_wait() if timeout is None else timeout)
    for thread in list(_threads):
        thread.join(max(end - time.monotonic(), 0.0))
    _threads.clear()
