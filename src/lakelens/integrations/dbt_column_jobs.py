"""Who derives the column lineage of a dbt project's models, and when.

`dbt_columns.derive` hands out one task per model once the models it reads are done. The
tasks run here in this process, in a pool of worker processes, or were already run by a
head start: a process forked when `lakelens import dbt` starts, which derives the project
from its artifacts alone while the import opens the store, reads and converts them. The
import then takes each model's result from the head start when the task it would run is the
very same (same SQL, dialect and parents' columns), and derives only the others itself.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# ("ok", {output column: [(table key, column)]}, None) or ("unresolved", why, None)
Outcome = tuple[str, Any, Any]


@dataclass(frozen=True)
class Task:
    """What deriving one model reads: its SQL and, per parent, (uid, table key, columns,
    documented columns, name). Plain data, so a worker process can take it."""

    uid: str
    sql: str
    dialect: str | None
    parents: list[tuple[str, tuple[str, ...], list[str] | None, list[str] | None, str]]

    def digest(self) -> str:
        """Everything the result depends on (not the uids: the result names tables by key)."""
        read = [
            [list(key), cols, documented, name] for _, key, cols, documented, name in self.parents
        ]
        text = json.dumps([self.sql, self.dialect, read], separators=(",", ":"))
        return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


# Below this many compiled models, worker processes cost more to start than they save
# (forked helpers of a head start cost next to nothing).
POOL_FROM = 200
_HELPERS_FROM = 20
_MODELS_PER_WORKER = 50
_GC_THRESHOLD = 20_000


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """Run the cyclic garbage collector about a thirtieth as often while deriving (forked helpers
    inherit it). Each parsed model is thousands of young objects, and sqlglot's trees point
    to their parents, so only the collector frees them: at the default threshold (700) its
    passes over the parse in progress took a quarter of the derivation's CPU (500 models:
    0.50 s against 0.37 s). A pass every 20,000 allocations still frees each finished tree
    within a few models."""
    threshold = gc.get_threshold()
    gc.set_threshold(max(threshold[0], _GC_THRESHOLD), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)


@_fewer_collections()
def schedule(
    compiled: Mapping[str, str],
    parents: Mapping[str, list[str]],
    order: list[str],
    start: Callable[[str], Task | None],
    finish: Callable[[Task, Outcome], None],
    workers: int | None,
    *,
    ahead: Ahead | None = None,
    fork: bool = False,
) -> None:
    """Derive every compiled model once all of its compiled parents are done: with helper
    processes as parents finish, then (for what is left: all of it when there is no pool, a
    cycle, or a pool that broke) here, upstream first, taking what `ahead` derived."""
    from lakelens.integrations.dbt_columns import derive_one

    if workers is None:
        workers = 1 if busy() else min(_cores(), 8, max(1, len(compiled) // _MODELS_PER_WORKER))
    finished: set[str] = set()
    if workers > 1 and len(compiled) >= (_HELPERS_FROM if fork else POOL_FROM) and not ahead:
        try:
            if fork:
                _with_helpers(_Front(compiled, parents, order, finished), start, finish, workers)
            else:
                _in_pool(_Front(compiled, parents, order, finished), start, finish, workers)
        except Exception as exc:  # no processes here (a sandbox, a frozen app): carry on alone
            logger.warning("Column lineage: deriving in this process (%s)", exc)
    for uid in order:
        if uid in compiled and uid not in finished and (task := start(uid)) is not None:
            found = ahead.outcome(task) if ahead is not None else None
            finish(task, found if found is not None else derive_one(task))


def busy() -> bool:
    """Whether other work keeps every core busy (a load average past the cores by one). The
    kernel then gives this command's processes one share between them (autogroup): work done
    in parallel takes as long, and handing it out only adds CPU."""
    cores = _cores()
    try:
        return os.getloadavg()[0] >= cores + 1
    except OSError:  # no load average here
        return False


def _cores() -> int:
    return os.cpu_count() or 1


class _Front:
    """The compiled models whose compiled parents are all finished, upstream first."""

    def __init__(
        self,
        compiled: Mapping[str, str],
        parents: Mapping[str, list[str]],
        order: list[str],
        finished: set[str],
    ) -> None:
        position = {uid: i for i, uid in enumerate(order)}
        self.waiting = {
            uid: len({p for p in parents[uid] if p in compiled and p != uid}) for uid in compiled
        }
        self.children: dict[str, list[str]] = {}
        for uid in compiled:
            for p in set(parents[uid]):
                if p in compiled and p != uid:
                    self.children.setdefault(p, []).append(uid)
        self.ready = sorted(
            (uid for uid, n in self.waiting.items() if n == 0), key=position.__getitem__
        )
        self.finished = finished

    def next(self, start: Callable[[str], Task | None]) -> Task | None:
        """The next model to derive (those `start` settles without deriving are finished)."""
        while self.ready:
            task = start(uid := self.ready.pop(0))
            if task is not None:
                return task
            self.done(uid)
        return None

    def done(self, uid: str) -> None:
        self.finished.add(uid)
        for child in self.children.get(uid, []):
            self.waiting[child] -= 1
            if self.waiting[child] == 0:
                self.ready.append(child)


def _in_pool(
    front: _Front,
    start: Callable[[str], Task | None],
    finish: Callable[[Task, Outcome], None],
    workers: int,
) -> None:
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

    from lakelens.integrations.dbt_columns import derive_one

    running: dict[Future[Outcome], Task] = {}
    with ProcessPoolExecutor(workers, mp_context=_context(False)) as pool:
        while front.ready or running:
            while (task := front.next(start)) is not None:
                running[pool.submit(derive_one, task)] = task
            if running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    task = running.pop(future)
                    finish(task, future.result())  # a broken pool raises: the rest goes serial
                    front.done(task.uid)


def _with_helpers(
    front: _Front,
    start: Callable[[str], Task | None],
    finish: Callable[[Task, Outcome], None],
    workers: int,
) -> None:
    """Derive in `workers` forked helpers, a task at a time each over a pipe (a tenth of a
    process pool's cost per task); this process only hands out tasks, so a helper is never
    left waiting while it derives."""
    import multiprocessing
    from multiprocessing.connection import wait

    context = multiprocessing.get_context("fork")
    idle: list[Any] = []
    helpers = []
    for _ in range(workers):
        mine, theirs = context.Pipe()
        helper = context.Process(target=_helper, args=(theirs, mine), daemon=True)
        helper.start()
        theirs.close()
        idle.append(mine)
        helpers.append(helper)
    busy: dict[Any, Task] = {}
    try:
        while front.ready or busy:
            while idle and (task := front.next(start)) is not None:
                conn = idle.pop()
                conn.send(task)
                busy[conn] = task
            answered: Any
            for answered in wait(list(busy)) if busy else []:
                task = busy.pop(answered)
                finish(task, answered.recv())
                front.done(task.uid)
                idle.append(answered)
    finally:
        for left in [*idle, *busy]:
            with contextlib.suppress(OSError):
                left.send(None)
            left.close()
        for helper in helpers:
            helper.join(timeout=1)


def _helper(conn: Any, theirs: Any) -> None:
    theirs.close()  # else the pipe would never tell it that the head start is gone
    while (task := conn.recv()) is not None:
        from lakelens.integrations.dbt_columns import derive_one

        conn.send(derive_one(task))


def _context(fork: bool) -> Any:
    """fork for a head start (one thread, sqlglot loaded); else forkserver where there is one
    (no fork of a threaded parent), else spawn. Both start workers by importing the parent's
    __main__, which is why a library caller gets no workers by default."""
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    if fork:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


class Ahead:
    """A head start: column lineage derived by a forked process from the artifacts alone."""

    def __init__(self, pid: int, reader: Any) -> None:
        self._pid: int | None = pid
        self._reader = reader
        self._found: dict[str, tuple[str, Outcome]] = {}  # uid → (task digest, outcome)
        self._done = False

    @classmethod
    def begin(cls, target: str | Path, workers: int | None) -> Ahead | None:
        """Fork the head start, or None where forking is not safe (not Linux, other threads,
        no sqlglot) or would not pay (a busy machine, unless `workers` are asked for). The
        caller must `close()` it."""
        if sys.platform != "linux" or threading.active_count() > 1:
            return None
        if workers is None and busy():
            # Deriving in this process costs a tenth less CPU than forking, and a busy machine
            # runs the two processes one after the other anyway (measured in docs/benchmarks.md).
            return None
        try:
            import multiprocessing

            import sqlglot  # noqa: F401
            from sqlglot.optimizer import scope  # noqa: F401

            # Loaded here, before the fork: the import needs them too, and the head start's
            # workers (forked in turn) start with them. (`qualify`, only for the shapes the
            # resolver leaves to it, is loaded when first needed.)
            import lakelens.integrations.dbt as _dbt  # noqa: F401
            import lakelens.integrations.dbt_column_resolve as _resolve  # noqa: F401
            import lakelens.integrations.dbt_columns as _columns  # noqa: F401
        except ImportError:
            return None
        reader, writer = multiprocessing.Pipe(duplex=False)
        # Objects from before the fork are left to the parent's collector: a collection in a
        # forked process would touch (and so copy) every page they sit on.
        gc.freeze()
        pid = os.fork()
        if pid == 0:  # the head start
            try:
                os.setpgid(0, 0)
                reader.close()
                _quiet()
                _run_ahead(Path(target), workers, writer)
            finally:
                os._exit(0)
        gc.unfreeze()
        writer.close()
        with contextlib.suppress(OSError):  # it already did (or is gone)
            os.setpgid(pid, pid)
        return cls(pid, reader)

    def outcome(self, task: Task) -> Outcome | None:
        """What the head start derived for this very task, waiting for it to reach the model;
        None when its task for the model was another (it knew other columns) or never came."""
        while task.uid not in self._found and not self._done:
            try:
                uid, digest, outcome = self._reader.recv()
            except (EOFError, OSError):
                self._done = True
                break
            self._found[uid] = (digest, outcome)
        digest, outcome = self._found.get(task.uid, ("", None))
        return outcome if outcome is not None and digest == task.digest() else None

    def close(self, wait: float = 0.0) -> None:
        """Stop the head start (and its helpers) unless it ends within `wait` seconds."""
        deadline = time.monotonic() + wait
        while not self._done and self._reader.poll(max(0.0, deadline - time.monotonic())):
            try:
                self._reader.recv()
            except (EOFError, OSError):
                self._done = True
        finished, self._done = self._done, True
        self._reader.close()
        if self._pid is not None:
            pid, self._pid = self._pid, None
            if not finished:
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.waitpid(pid, 0)


def _quiet() -> None:
    """The head start writes nothing: the import says what it does."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    logging.disable(logging.CRITICAL)


def _run_ahead(target: Path, workers: int | None, writer: Any) -> None:
    from lakelens.integrations.dbt import _read
    from lakelens.integrations.dbt_columns import _dict, derive

    if workers is None:
        workers = 1 if busy() else _cores()
    artifacts = _read(target, lambda message: None)
    manifest = artifacts.manifest
    every = {uid: uid for key in ("nodes", "sources") for uid in _dict(manifest.get(key))}
    derive(
        manifest,
        every,
        catalog=artifacts.docs.get("catalog"),
        workers=workers,
        report=lambda task, outcome: writer.send((task.uid, task.digest(), outcome)),
        fork=True,
    )
    writer.close()
