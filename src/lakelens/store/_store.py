"""The Store: one handle on the event database, created and migrated on first use."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lakelens.config import Settings, load_settings
from lakelens.errors import LakelensError, StoreError
from lakelens.store.sql import (
    AlchemyReader,
    PostgresReader,
    Reader,
    SqliteReader,
    sqlite_file,
)

if TYPE_CHECKING:
    import sqlalchemy as sa

    from lakelens.events import Batch

__all__ = ["Store"]

_log = logging.getLogger("lakelens.store")
_PARTITION_UPKEEP_SECONDS = 3600.0
# The upkeep runs this long after each clock hour begins: today's hourly --grep index
# (store/log_search_days.py) then covers the logs up to that hour, not up to an hour after the
# process's first write (which left up to two hours of today's logs to scan).
_UPKEEP_LAG_SECONDS = 60.0
# How long closing waits for a background index build to end before leaving it.
CLOSE_WAIT_SECONDS = 10.0
# `Store.keep_up` looks at least this often whether the upkeep is due: a write may have run it
# meanwhile, and the wall clock may jump (a suspended machine, a corrected clock).
UPKEEP_POLL_SECONDS = 60.0

# SQLAlchemy (and Alembic) load on the first write or SQLAlchemy connection, not on import:
# a CLI read of an up-to-date SQLite store never needs them (see `reader`).


def _wal_limit() -> int:
    """LAKELENS_SQLITE_WAL_LIMIT_MB in bytes (not a Settings field yet: read here, once per
    engine); 64 MiB when unset or not a positive number."""
    import os

    from lakelens.store.engine import WAL_LIMIT_BYTES

    try:
        megabytes = float(os.environ.get("LAKELENS_SQLITE_WAL_LIMIT_MB", ""))
    except ValueError:
        return WAL_LIMIT_BYTES
    return int(megabytes * 1024 * 1024) if megabytes > 0 else WAL_LIMIT_BYTES


def seconds_to_upkeep(now: float) -> float:
    """Seconds from wall-clock `now` to the next partition upkeep, `_UPKEEP_LAG_SECONDS` into
    a clock hour: the coming one's, or this hour's when that moment is still ahead (at most an
    hour)."""
    into_hour = now % _PARTITION_UPKEEP_SECONDS
    wait = _PARTITION_UPKEEP_SECONDS - into_hour + _UPKEEP_LAG_SECONDS
    return wait - _PARTITION_UPKEEP_SECONDS if wait > _PARTITION_UPKEEP_SECONDS else wait


class Store:
    """The event store at `url` (SQLite file or PostgreSQL); safe to share between threads."""

    def __init__(
        self,
        url: str | None = None,
        *,
        settings: Settings | None = None,
        auto_upgrade: bool = True,
    ) -> None:
        self.settings = settings or load_settings()
        self.url = url or self.settings.resolved_database_url
        self._auto_upgrade = auto_upgrade
        self._engine: sa.Engine | None = None
        self._lock = threading.Lock()
        # The partition upkeep runs a minute into each clock hour, so on the wall clock;
        # tests move `upkeep_clock` rather than wait an hour.
        self.upkeep_clock: Callable[[], float] = time.time
        self._partitions_due = float("inf")  # `upkeep_clock` time of the next partition upkeep
        self._upkeep_lock = threading.Lock()  # one upkeep at a time: a write's or `keep_up`'s
        self.upkeep_at: float | None = None  # when this process's last upkeep made the days
        self._partition_notes: set[str] = set()
        self._index_builder: threading.Thread | None = None  # see `maintain_partitions`
        # A long-lived process (`lakelens serve`) builds the ended days' `--grep` indexes in
        # the background; a pipeline's process never does, or its exit would wait for a build.
        self.background_indexes = False
        self._closing = threading.Event()

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Store:
        return cls(settings=settings)

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine; the first access creates the schema when it is missing."""
        if self._engine is None:
            import sqlalchemy as sa

            from lakelens.store import migrate
            from lakelens.store.engine import PostgresTimeouts, create_store_engine

            with self._lock:
                if self._engine is None:
                    self._check_file()
                    engine = create_store_engine(
                        self.url,
                        synchronous=self.settings.sqlite_synchronous,
                        timeouts=PostgresTimeouts.from_settings(self.settings),
                        wal_limit=_wal_limit(),
                        # lakelens' own home directory is made; a URL's directory is not.
                        create_parent=self.url != self.settings.resolved_database_url
                        or not self.settings.database_url,
                    )
                    try:
                        if self._auto_upgrade and not migrate.is_current(engine):
                            migrate.upgrade(engine)
                        if self.settings.raw.get("assets"):
                            from lakelens.ingest.identity import sync_declared

                            sync_declared(engine, self.settings)
                    except LakelensError:
                        engine.dispose()
                        raise
                    except sa.exc.DatabaseError as exc:
                        engine.dispose()
                        raise StoreError(
                            f"Cannot open the store at {self.location}: {exc.orig}. "
                            "Check LAKELENS_DATABASE_URL / LAKELENS_HOME."
                        ) from None
                    self._engine = engine
                    if engine.dialect.name == "postgresql":
                        self._partitions_due = 0.0  # by the first write (see `write`)
        return self._engine

    def maintain_partitions(self, now: float | None = None) -> None:
        """Make the coming days' partitions of logs and spans (PostgreSQL; see
        store/partitioning.py). Run by the first write of a process and then at most hourly,
        so no server is needed and reads never pay for it (`lakelens serve` runs it on the
        clock too: `keep_up`); a fallback to one table is logged once per process."""
        if not self._upkeep_lock.acquire(blocking=False):
            return  # another thread (a write, `keep_up`) runs it now
        try:
            self._maintain(now)
        finally:
            self._upkeep_lock.release()

    def _maintain(self, now: float | None) -> None:
        from lakelens.store.partitioning import maintain

        at = self.upkeep_clock()
        now = at if now is None else now
        self._partitions_due = at + seconds_to_upkeep(now)
        try:
            states = maintain(self.engine, now=now)
        except Exception as exc:  # never stops a write: the default partition takes the rows
            states = []
            from lakelens.store.postgres import error_line

            _log.warning("day partitions of logs and spans not made: %s", error_line(exc))
        else:
            self.upkeep_at = at
        for state in states:
            if state.note and state.note not in self._partition_notes:
                self._partition_notes.add(state.note)
                _log.warning("%s", state.note)
        building = self._index_builder is not None and self._index_builder.is_alive()
        if (
            self.background_indexes
            and states
            and not building
            and self.engine.dialect.name == "postgresql"
        ):
            # The --grep indexes of days that just ended: built off the write path.
            from lakelens.store.log_search_days import start_background

            self._index_builder = start_background(
                self.engine, self._closing, now=now, keep_days=self.settings.retention_days
            )

    def upkeep_when_due(self) -> None:
        """The partition upkeep, when it is due (PostgreSQL; nothing on SQLite). Every writer
        calls it before writing: `write`, and the server's group committer, which writes
        without `write`."""
        if self._upkeep_due():
            self.maintain_partitions()

    def _upkeep_due(self) -> bool:
        due, now = self._partitions_due, self.upkeep_clock()
        # A clock set back leaves the next upkeep more than an hour ahead: due now.
        return due <= now or now + _PARTITION_UPKEEP_SECONDS < due < float("inf")

    def keep_up(self, stop: threading.Event, poll: float = UPKEEP_POLL_SECONDS) -> None:
        """Run the partition upkeep whenever it is due, writes or none, until `stop` is set:
        `lakelens serve` runs it in a thread on PostgreSQL (SQLite has no upkeep), so a server
        that receives nothing for hours still makes the coming days ahead and keeps today's
        hourly --grep index and the ended days' indexes built. A failed upkeep is logged in
        one line and tried again the next hour."""
        while not stop.wait(max(0.0, min(poll, self._partitions_due - self.upkeep_clock()))):
            self.upkeep_when_due()

    def index_ended_days(self, now: float | None = None) -> int:
        """Build the missing `logs --grep` indexes of ended days now (PostgreSQL, logs
        partitioned by day; see store/log_search_days.py); returns how many were built."""
        from lakelens.store.log_search_days import build

        return build(self.engine, now=now, wait=True, keep_days=self.settings.retention_days)

    def _check_file(self) -> None:
        """A SQLite file that is damaged, not SQLite, or another program's: one line, not a
        traceback, and never a lakelens schema added to someone else's database."""
        path = sqlite_file(self.url)
        if path is not None:
            from lakelens.store.damage import check_file

            check_file(path)

    def exists(self) -> bool:
        """False for a SQLite store whose file is not there yet (PostgreSQL: always True)."""
        path = sqlite_file(self.url)
        return path is None or path.exists()

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @property
    def location(self) -> str:
        """Where the data is, with any password hidden."""
        if self.url.startswith("sqlite"):
            return self.url  # no credentials in a file URL
        from lakelens.store.postgres import masked_url

        return masked_url(self.url)

    def connect(self) -> sa.Connection:
        return self.engine.connect()

    def reader(self) -> Reader:
        """A read connection for plain-SQL analysis queries (close it, or use it in `with`).

        An up-to-date store is read through its driver directly (`sqlite3`, psycopg);
        one that must be created or migrated first goes through the engine.
        """
        if self._engine is None and self.settings.raw.get("assets"):
            self.engine  # noqa: B018 - stores the aliases lakelens.yaml declares, or says why not
        if self._engine is None:
            path = sqlite_file(self.url)
            direct: Reader | None = None
            if path is not None:
                direct = SqliteReader.open(path)
            elif self.url.startswith("postgres"):
                from lakelens.store.postgres import PostgresTimeouts

                timeouts = PostgresTimeouts.from_settings(self.settings)
                direct = PostgresReader.open(self.url, timeouts)
            if direct is not None:
                return direct
        return AlchemyReader(self.connect(), owned=True)

    def upgrade(self) -> tuple[str | None, str]:
        """Apply pending migrations; return (revision before, revision after)."""
        from lakelens.store import migrate
        from lakelens.store.engine import PostgresTimeouts, create_store_engine

        if self._engine is None:
            self._check_file()
        engine = self._engine or create_store_engine(
            self.url,
            synchronous=self.settings.sqlite_synchronous,
            timeouts=PostgresTimeouts.from_settings(self.settings),
            wal_limit=_wal_limit(),
        )
        self._engine = engine
        if engine.dialect.name == "postgresql":
            self._partitions_due = 0.0  # made by the next use, after the migration
        self.stop_background_work()
        return migrate.upgrade(engine)

    def write(self, batch: Batch, *, batch_id: str | None = None, **claim: Any) -> bool:
        """Write one batch in one transaction; with `batch_id`, at most once (False for a repeat)."""
        if batch_id is None and not len(batch):
            return True
        from lakelens._clean import batch_caps
        from lakelens.store.writes import write_batch

        batch_caps(batch)  # writers that bypassed the ingest boundary (SDK, importers)

        engine = self.engine
        self.upkeep_when_due()
        return write_batch(engine, batch, batch_id=batch_id, **claim)

    def prune(
        self,
        older_than_days: float | None = None,
        *,
        now: float | None = None,
        progress: Callable[[str, int], None] | None = None,
    ) -> dict[str, int]:
        """Delete events older than the retention window (LAKELENS_RETENTION_DAYS by default)."""
        from lakelens.store.prune import prune

        days = self.settings.retention_days if older_than_days is None else older_than_days
        cutoff = (time.time() if now is None else now) - days * 86400
        deleted = prune(self.engine, cutoff, progress=progress)
        if self.engine.dialect.name == "sqlite":
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        self.analyze()
        return deleted

    def analyze(self) -> None:
        """Refresh the query planner's statistics (run by `db prune`).

        Without them SQLite picked scans over indexes on big stores (bench/queries.py: a
        1.5 s summary became 0.5 s). On SQLite the statistics are sampled, so this stays cheap.
        """
        with self.engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA analysis_limit=2000")
            conn.exec_driver_sql("ANALYZE")
            conn.commit()

    def dispose(self) -> None:
        """Drop pooled connections (after fork, or when done)."""
        if self._engine is not None:
            self._engine.dispose(close=False)

    def stop_background_work(self, timeout: float | None = None) -> None:
        """Stop this process's index builder after the build under way (one partition's
        index) and wait for it, at most `timeout` seconds: before a migration, which may
        deadlock with it, and at close. A build cut short by the process's exit leaves an
        INVALID index, which the next build replaces."""
        if self._index_builder is not None:
            self._closing.set()
            self._index_builder.join(timeout)
            self._index_builder = None
            self._closing.clear()

    def close(self) -> None:
        self.stop_background_work(timeout=CLOSE_WAIT_SECONDS)
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
