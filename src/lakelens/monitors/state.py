"""Where monitors and what they found last are kept: the `monitors` table (settings, last run,
last error) and one `heartbeats` row per monitor (component `monitor:NAME`) whose details hold
the last cycle's summary, its failures and what each table looked like (to tell a change and a
vanished table next time).

A cycle is claimed by moving `last_run` forward only if it is still due: of several servers
(or a server and `lakelens monitor run`) polling one store, exactly one runs each cycle.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from lakelens.monitors.settings import MonitorConfig, MonitorError, from_config
from lakelens.store import schema
from lakelens.store.engine import dialect_insert

if TYPE_CHECKING:
    from lakelens.config import Settings

__all__ = [
    "COMPONENT_PREFIX",
    "MonitorState",
    "TableState",
    "add_monitor",
    "claim",
    "configured",
    "load_monitors",
    "record_cycle",
    "remove_monitor",
    "sync_config",
]

COMPONENT_PREFIX = "monitor:"


@dataclass
class TableState:
    """What a table looked like at its last observation."""

    asset: str
    # Opaque change marker from the engine (PostgreSQL: file node and change counters).
    marker: str | None = None
    modified_at: float | None = None
    rows: int | None = None
    schema_hash: str | None = None
    seen: float | None = None
    # Set while the table is missing from the warehouse (reported until it returns).
    vanished_since: float | None = None
    # When its columns were last profiled, and what the table looked like then (its change
    # marker, modification time and the columns profiled; None: unknown or a column failed).
    profiled_at: float | None = None
    profile_version: str | None = None


@dataclass
class MonitorState:
    """A monitor's settings and what its last cycle found."""

    config: MonitorConfig
    created_at: float
    last_run: float | None = None
    last_error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def unreachable(self) -> bool:
        """The last cycle read nothing (connection, credentials, listing)."""
        return bool(self.details.get("error"))

    @property
    def failed_tables(self) -> dict[str, dict[str, Any]]:
        failed = self.details.get("failed")
        return failed if isinstance(failed, dict) else {}

    def due(self, now: float) -> bool:
        return self.last_run is None or now - self.last_run >= self.config.interval

    def summary(self) -> dict[str, Any]:
        """The stable JSON shape of `lakelens monitor list --json` and the health component."""
        return {
            "name": self.name,
            "url": self.config.shown_url,
            "source": self.config.source,
            "interval_seconds": self.config.interval,
            "schemas": list(self.config.schemas),
            "tables": list(self.config.tables),
            "password_env": self.config.password_env,
            "profile_columns": dict(self.config.profile_columns),
            "profile_interval_seconds": self.config.profile_interval,
            "created_at": self.created_at,
            "last_run": self.last_run,
            "last_error": self.last_error,
            "tables_listed": self.details.get("tables"),
            "tables_observed": self.details.get("observed"),
            "tables_failed": sorted(self.failed_tables),
            "seconds": self.details.get("seconds"),
        }


def table_states(details: dict[str, Any]) -> dict[str, TableState]:
    known = set(TableState.__dataclass_fields__)
    found = {}
    for table, values in (details.get("state") or {}).items():
        if isinstance(values, dict) and "asset" in values:
            found[table] = TableState(**{k: v for k, v in values.items() if k in known})
    return found


def _heartbeats(conn: sa.Connection, names: list[str]) -> dict[str, dict[str, Any]]:
    h = schema.heartbeats
    found: dict[str, dict[str, Any]] = {}
    if not names:
        return found
    for component, details in conn.execute(
        sa.select(h.c.component, h.c.details).where(
            h.c.component.in_([COMPONENT_PREFIX + n for n in names])
        )
    ):
        try:
            found[component.removeprefix(COMPONENT_PREFIX)] = json.loads(details or "{}")
        except ValueError:
            continue
    return found


def load_monitors(conn: sa.Connection, names: list[str] | None = None) -> list[MonitorState]:
    """The stored monitors (all, or those named), with their last cycle's details."""
    m = schema.monitors
    query = sa.select(m).order_by(m.c.name)
    if names:
        query = query.where(m.c.name.in_(names))
    rows = conn.execute(query).all()
    details = _heartbeats(conn, [r.name for r in rows])
    found = []
    for row in rows:
        try:
            config = MonitorConfig.from_row(row.name, row.url, row.settings)
        except Exception as exc:  # written by a newer lakelens, or edited by hand
            raise MonitorError(
                f"Monitor {row.name!r} has settings this lakelens cannot read ({exc}); "
                f"remove it with `lakelens monitor remove {row.name}` and add it again."
            ) from None
        found.append(
            MonitorState(
                config=config,
                created_at=row.created_at,
                last_run=row.last_run,
                last_error=row.last_error,
                details=details.get(row.name, {}),
            )
        )
    return found


def add_monitor(
    engine: sa.Engine, config: MonitorConfig, *, now: float, replace: bool = False
) -> None:
    """Store a new monitor (or with `replace`, new settings for an existing one)."""
    m = schema.monitors
    with engine.begin() as conn:
        existing = conn.execute(sa.select(m.c.settings).where(m.c.name == config.name)).first()
        if existing is not None:
            if not replace:
                raise MonitorError(
                    f"A monitor named {config.name!r} exists already; pass --replace to change "
                    "its settings, or --name to add another."
                )
            conn.execute(
                m.update()
                .where(m.c.name == config.name)
                .values(url=config.url, settings=config.settings_json())
            )
            return
        conn.execute(
            m.insert().values(
                name=config.name,
                url=config.url,
                settings=config.settings_json(),
                created_at=now,
            )
        )


def remove_monitor(engine: sa.Engine, name: str) -> None:
    """Forget a monitor and its state; what it recorded stays (it is history)."""
    m, h = schema.monitors, schema.heartbeats
    with engine.begin() as conn:
        row = conn.execute(sa.select(m.c.settings).where(m.c.name == name)).first()
        if row is None:
            known = ", ".join(conn.execute(sa.select(m.c.name).order_by(m.c.name)).scalars())
            raise MonitorError(
                f"No monitor named {name!r}" + (f"; known: {known}." if known else "; none exist.")
            )
        if json.loads(row.settings or "{}").get("source") == "config":
            raise MonitorError(
                f"Monitor {name!r} is defined in lakelens.yaml; remove it from the monitors: "
                "section there."
            )
        conn.execute(m.delete().where(m.c.name == name))
        conn.execute(h.delete().where(h.c.component == COMPONENT_PREFIX + name))


def configured(settings: Settings) -> list[MonitorConfig]:
    """The monitors lakelens.yaml declares."""
    return from_config(settings.raw, str(settings.config_file or "lakelens.yaml"))


def sync_config(engine: sa.Engine, settings: Settings, *, now: float | None = None) -> None:
    """Make the stored monitors agree with lakelens.yaml: its monitors are added or updated,
    and those it no longer lists are removed. Writes nothing when they agree."""
    declared = {c.name: c for c in configured(settings)}
    m = schema.monitors
    with engine.connect() as conn:
        stored = {
            r.name: (r.url, r.settings)
            for r in conn.execute(sa.select(m.c.name, m.c.url, m.c.settings))
        }
    changes = []
    for name, config in declared.items():
        current = stored.get(name)
        if current is None or current != (config.url, config.settings_json()):
            changes.append(config)
    gone = [
        name
        for name, (_url, settings_json) in stored.items()
        if name not in declared and json.loads(settings_json or "{}").get("source") == "config"
    ]
    if not changes and not gone:
        return
    now = time.time() if now is None else now
    for config in changes:
        add_monitor(engine, config, now=now, replace=True)
    with engine.begin() as conn:
        for name in gone:
            conn.execute(m.delete().where(m.c.name == name))
            conn.execute(
                schema.heartbeats.delete().where(
                    schema.heartbeats.c.component == COMPONENT_PREFIX + name
                )
            )


def claim(engine: sa.Engine, state: MonitorState, now: float, *, force: bool = False) -> bool:
    """Take this cycle of the monitor: True for exactly one caller while it is due."""
    m = schema.monitors
    query = m.update().where(m.c.name == state.name).values(last_run=now)
    if not force:
        query = query.where(
            sa.or_(m.c.last_run.is_(None), m.c.last_run <= now - state.config.interval)
        )
    with engine.begin() as conn:
        return (conn.execute(query).rowcount or 0) == 1


def record_cycle(
    engine: sa.Engine, name: str, *, now: float, error: str | None, details: dict[str, Any]
) -> None:
    """Store a cycle's outcome: `last_error` (masked, None when all went well) and details."""
    m, h = schema.monitors, schema.heartbeats
    insert = dialect_insert(engine)
    stmt = insert(h).values(
        component=COMPONENT_PREFIX + name,
        last_run=now,
        owner=f"{socket.gethostname()}:{os.getpid()}",
        details=json.dumps(details, default=str),
    )
    with engine.begin() as conn:
        conn.execute(m.update().where(m.c.name == name).values(last_error=error))
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["component"],
                set_={
                    "last_run": stmt.excluded.last_run,
                    "owner": stmt.excluded.owner,
                    "details": stmt.excluded.details,
                },
            )
        )


def state_json(states: dict[str, TableState]) -> dict[str, dict[str, Any]]:
    return {
        table: {k: v for k, v in asdict(s).items() if v is not None} for table, s in states.items()
    }
