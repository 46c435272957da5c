"""Which collector reads which warehouse, and the one-line answer when its driver is missing.

PostgreSQL and DuckDB have collectors of their own; any other SQLAlchemy URL is read through
the generic inspector collector. A third party adds one through the `lakelens.monitors`
entry point group (name: the URL's backend, e.g. `snowflake`; value: a Collector class taking
the MonitorConfig and the connect URL); an entry point named like a built-in replaces it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lakelens.monitors.settings import MonitorConfig, MonitorError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from lakelens.monitors.base import Collector

__all__ = ["ENTRY_POINT_GROUP", "open_collector", "require_driver"]

ENTRY_POINT_GROUP = "lakelens.monitors"

# Python module (as ImportError names it) → the package that provides it.
_DRIVER_PACKAGES = {
    "pyodbc": "pyodbc",
    "pymssql": "pymssql",
    "MySQLdb": "mysqlclient",
    "pymysql": "pymysql",
    "mysql": "mysql-connector-python",
    "mariadb": "mariadb",
    "psycopg": "'psycopg[binary]'",
    "psycopg2": "psycopg2-binary",
    "asyncpg": "asyncpg",
    "pg8000": "pg8000",
    "oracledb": "oracledb",
    "cx_Oracle": "cx_Oracle",
    "duckdb": "duckdb",
    "ibm_db": "ibm_db_sa",
    "trino": "trino",
    "pyhive": "pyhive",
}
# SQLAlchemy dialects that come as packages of their own.
_DIALECT_PACKAGES = {
    "snowflake": "snowflake-sqlalchemy",
    "bigquery": "sqlalchemy-bigquery",
    "redshift": "sqlalchemy-redshift",
    "trino": "trino",
    "databricks": "databricks-sqlalchemy",
    "clickhouse": "clickhouse-sqlalchemy",
    "duckdb": "duckdb-engine",
    "hana": "sqlalchemy-hana",
    "ibm_db_sa": "ibm_db_sa",
    "db2": "ibm_db_sa",
    "awsathena": "pyathena",
    "cockroachdb": "sqlalchemy-cockroachdb",
    "teradatasql": "teradatasqlalchemy",
    "vertica": "sqlalchemy-vertica-python",
}


def _missing(url: URL, package: str) -> MonitorError:
    return MonitorError(
        f"Monitoring {url.drivername}://… needs the {package.strip(chr(39))} package: "
        f"pip install {package}"
    )


def _postgres_url(url: URL) -> URL:
    """postgresql:// means psycopg (3), as for the store; psycopg2 when only it is there."""
    if url.drivername not in ("postgresql", "postgres"):
        return url
    try:
        import psycopg  # noqa: F401

        return url.set(drivername="postgresql+psycopg")
    except ImportError:
        pass
    try:
        import psycopg2  # noqa: F401

        return url.set(drivername="postgresql+psycopg2")
    except ImportError:
        raise _missing(url, "'psycopg[binary]'") from None


def require_driver(config: MonitorConfig) -> None:
    """MonitorError naming the package to install when this URL's driver is missing."""
    import sqlalchemy as sa

    url = sa.engine.make_url(config.url)
    backend = url.get_backend_name()
    if backend in _plugins():
        return
    if backend == "duckdb":
        try:
            import duckdb  # noqa: F401
        except ImportError:
            raise _missing(url, "duckdb") from None
        return
    if backend == "postgresql":
        url = _postgres_url(url)
    try:
        dialect = url.get_dialect()
    except sa.exc.NoSuchModuleError:
        package = _DIALECT_PACKAGES.get(backend)
        if package is None:
            raise MonitorError(
                f"Monitoring {url.drivername}://… needs a SQLAlchemy dialect for {backend!r}, "
                "which is not installed; install the package that provides it."
            ) from None
        raise _missing(url, package) from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        module = (exc.name or "").split(".")[0]
        package = _DRIVER_PACKAGES.get(module, module or url.get_driver_name())
        raise _missing(url, package) from None


def _plugins() -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {point.name: point for point in entry_points(group=ENTRY_POINT_GROUP)}


def open_collector(config: MonitorConfig, environ: Mapping[str, str] | None = None) -> Collector:
    """A collector connected to the monitor's warehouse (its one connection is open)."""
    require_driver(config)
    url = config.connect_url(environ)
    backend = url.get_backend_name()
    plugin = _plugins().get(backend)
    if plugin is not None:
        collector: Collector = plugin.load()(config, url)
        return collector
    if backend == "postgresql":
        from lakelens.monitors.postgres import PostgresCollector

        return PostgresCollector(config, _postgres_url(url))
    if backend == "duckdb":
        from lakelens.monitors.duckdb import DuckDBCollector

        return DuckDBCollector(config, url)
    from lakelens.monitors.generic import GenericCollector

    return GenericCollector(config, url)
