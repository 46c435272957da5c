"""Running alerting: build the destinations, evaluate, deliver — once or in a loop."""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakelens.alerts.config import AlertingConfig, load_alerting
from lakelens.alerts.engine import AlertEngine, Evaluation
from lakelens.alerts.outbox import DeliveryWorker, WorkerStats
from lakelens.errors import LakelensError

if TYPE_CHECKING:
    from lakelens.store import Store

__all__ = ["AlertingService", "build_destinations"]


def build_destinations(config: AlertingConfig) -> tuple[dict[str, Any], dict[str, str]]:
    """(destinations by name, configuration errors by name): one bad destination does not stop the others."""
    from lakelens.alerts.destinations import create_destination

    built: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, mapping in config.destinations.items():
        try:
            built[name] = create_destination(name, mapping)
        except LakelensError as exc:
            errors[name] = str(exc)
    return built, errors


@dataclass
class Cycle:
    evaluation: Evaluation
    delivery: WorkerStats


class AlertingService:
    """The evaluator and the delivery worker for one store."""

    def __init__(self, store: Store, config: AlertingConfig | None = None) -> None:
        self.store = store
        self.config = config or load_alerting(store.settings)
        self.destinations, self.errors = build_destinations(self.config)
        self.engine = AlertEngine(store, self.config)
        self.worker = DeliveryWorker(
            store,
            self.destinations,
            max_attempts=self.config.max_attempts,
            max_age=self.config.max_age,
        )
        self.wake = threading.Event()

    def run_once(self, *, now: float | None = None) -> Cycle:
        evaluation = self.engine.evaluate(now=now)
        return Cycle(evaluation, self.worker.run_once())

    def run_forever(self, stop: threading.Event) -> None:
        """Evaluate every evaluation_interval (or sooner when woken) and deliver continuously."""
        delivery = threading.Thread(
            target=self.worker.run_forever,
            args=(stop,),
            kwargs={"interval": 1.0, "wake": self.wake},
            name="lakelens-alert-delivery",
            daemon=True,
        )
        delivery.start()
        last_error = None
        while not stop.is_set():
            try:
                result = self.engine.evaluate()
                if result.notifications:
                    self.wake.set()
                last_error = None
            except Exception as exc:  # the heartbeat shows a stalled evaluator; keep trying
                message = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
                if message != last_error:
                    print(
                        f"lakelens: alert evaluation failed ({message}); retrying.", file=sys.stderr
                    )
                last_error = message
            stop.wait(self.config.evaluation_interval)
        delivery.join(timeout=5)

    def close(self) -> None:
        for destination in self.destinations.values():
            closer = getattr(destination, "close", None)
            if closer is not None:
                closer()
