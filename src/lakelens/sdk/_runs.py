"""`lakelens.run(...)`: a run of a job, usable as a context manager or a decorator."""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

from lakelens.errors import InvalidArgumentError
from lakelens.model import Run, from_epoch
from lakelens.sdk._errors import describe, status_for
from lakelens.sdk._runtime import ENV_CORRELATION_ID, ENV_JOB, ENV_RUN_ID, FRAME, RT, trace_id_for

__all__ = ["RunContext", "RunState", "run"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class RunState:
    """What the SDK knows about the run code is executing in."""

    run_id: str
    job: str
    trace_id: str
    partition: str | None = None
    joined: bool = False
    failed_assets: list[str] = field(default_factory=list)
    # The id that ties this run to others (an orchestrator's, e.g. a Prefect flow run id);
    # the run id itself when nothing outside gave one.
    correlation_id: str | None = None
    # Assets this run has read (its assets' deps): each read is reported once per run.
    reads: set[str] = field(default_factory=set)


def _check_name(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgumentError(f"Invalid {what}={value!r}: expected a non-empty string.")
    return value


class RunContext:
    """A run: records start, end, status and the error; exports its id to child processes."""

    def __init__(
        self,
        job: str,
        *,
        run_id: str | None = None,
        partition: str | None = None,
        trigger: str | None = None,
        tags: dict[str, str] | None = None,
        parent_run_id: str | None = None,
    ) -> None:
        self.job = _check_name(job, "job")
        self._run_id = _check_name(run_id, "run_id") if run_id is not None else None
        self.partition = None if partition is None else str(partition)
        self.trigger = trigger
        self.tags = {str(k): str(v) for k, v in (tags or {}).items()}
        self.parent_run_id = parent_run_id
        self.state: RunState | None = None
        self._token: Any = None
        self._saved_env: dict[str, str | None] = {}

    @property
    def run_id(self) -> str:
        if self.state is None:
            raise InvalidArgumentError(
                "The run has not started yet: use it as `with lakelens.run(...) as run:`."
            )
        return self.state.run_id

    @property
    def trace_id(self) -> str:
        return self.state.trace_id if self.state else ""

    def __enter__(self) -> RunContext:
        frame = FRAME.get()
        inherited = frame[0] or (RT.ambient_run() if self._run_id is None else None)
        if inherited is not None and self._run_id is None and inherited.joined:
            # Started by a parent process inside its run: join it instead of starting another.
            self.state = RunState(
                inherited.run_id,
                inherited.job,
                inherited.trace_id,
                self.partition,
                joined=True,
                correlation_id=inherited.correlation_id,
            )
        else:
            run_id = self._run_id or RT.new_id()
            # Kept from the enclosing run, else from whoever started this process
            # (LOG_CORRELATION_ID), and passed on unchanged.
            correlation_id = (
                (frame[0].correlation_id if frame[0] is not None else None)
                or os.environ.get(ENV_CORRELATION_ID)
                or run_id
            )
            self.state = RunState(
                run_id,
                self.job,
                trace_id_for(run_id),
                self.partition,
                correlation_id=correlation_id[:128],
            )
            RT.writer.put(
                Run(
                    run_id=run_id,
                    job=self.job,
                    status="started",
                    start_time=from_epoch(RT.clock()),
                    partition=self.partition,
                    trigger=self.trigger,
                    tags=self.tags,
                    correlation_id=self.state.correlation_id,
                    trace_id=self.state.trace_id,
                    parent_run_id=self.parent_run_id or (frame[0].run_id if frame[0] else None),
                )
            )
        self._token = FRAME.set((self.state, None, None))
        self._export_env(self.state)
        from lakelens.sdk._logs import install_stdlib_capture

        install_stdlib_capture()
        return self

    def _export_env(self, state: RunState) -> None:
        values = {
            ENV_RUN_ID: state.run_id,
            ENV_CORRELATION_ID: state.correlation_id or state.run_id,
            ENV_JOB: state.job,
        }
        for key, value in values.items():
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value

    def _restore_env(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        state = self.state
        assert state is not None
        self._restore_env()
        FRAME.reset(self._token)
        if state.joined:
            return
        status = status_for(exc_type)
        error: tuple[str | None, str | None, str | None] = (None, None, None)
        if exc_type is not None and exc is not None:
            error = describe(exc_type, exc, tb)
            from lakelens.sdk._logs import store_log

            store_log(
                40,
                f"run {state.job} failed: {error[0]}: {error[1]}",
                "lakelens",
                state,
                None,
                None,
                {"exception": error[2]},
            )
        elif state.failed_assets:
            status = "failure"
            error = (
                "AssetFailure",
                f"{len(state.failed_assets)} asset(s) failed: {', '.join(state.failed_assets)}",
                None,
            )
        RT.writer.put(
            Run(
                run_id=state.run_id,
                job=state.job,
                status=status,
                end_time=from_epoch(RT.clock()),
                error_type=error[0],
                error_message=error[1],
                error_traceback=error[2],
            )
        )
        if status == "failure":
            from lakelens.sdk._alerting import alert_after_failure

            alert_after_failure()

    def __call__(self, fn: F) -> F:
        """Use as a decorator: every call of `fn` is one run."""
        options = dict(
            run_id=self._run_id,
            partition=self.partition,
            trigger=self.trigger,
            tags=self.tags,
            parent_run_id=self.parent_run_id,
        )
        job = self.job
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with RunContext(job, **options):  # type: ignore[arg-type]
                    return await fn(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with RunContext(job, **options):  # type: ignore[arg-type]
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def run(
    job: str,
    *,
    run_id: str | None = None,
    partition: str | None = None,
    trigger: str | None = None,
    tags: dict[str, str] | None = None,
) -> RunContext:
    """Start a run of `job`: `with lakelens.run("daily_glucose_pipeline", partition="2024-10-15") as run:`.

    Works as a decorator too. The run id (a UUID unless given) is exported to child processes
    as LAKELENS_RUN_ID; a child process using lakelens joins the run. A LOG_CORRELATION_ID set
    by whoever started the process (another orchestrator) is kept as the run's correlation id
    and passed on unchanged; without one, the run id is exported as LOG_CORRELATION_ID.
    An exception marks the run failed, is recorded with its traceback, and propagates.
    """
    return RunContext(job, run_id=run_id, partition=partition, trigger=trigger, tags=tags)
