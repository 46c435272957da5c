"""Monitor settings: no password is ever stored or shown; lakelens.yaml's `monitors:` section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from _support import closed_port
from lakelens.errors import ConfigError
from lakelens.monitors import MonitorConfig, MonitorError, run_cycle
from lakelens.monitors.settings import Masker, from_config
from lakelens.monitors.state import add_monitor, load_monitors, remove_monitor, sync_config


def test_a_url_with_a_password_is_refused_without_repeating_it() -> None:
    with pytest.raises(MonitorError) as raised:
        MonitorConfig.create("postgresql://monitor:hunter2-secret@db:5432/analytics")
    message = str(raised.value)
    assert "hunter2-secret" not in message
    assert "postgresql://monitor:***@db:5432/analytics" in message and "--password-env" in message


def test_the_masker_hides_passwords_and_url_userinfo() -> None:
    mask = Masker(["s3cr3t!"])
    text = 'connection to postgresql://bob:s3cr3t!@db/x failed: password "s3cr3t!" rejected'
    assert mask(text) == ('connection to postgresql://bob:***@db/x failed: password "***" rejected')
    assert Masker()("see mysql://u:pw@h/db and https://x.org/a") == (
        "see mysql://u:***@h/db and https://x.org/a"
    )


def test_the_password_comes_from_the_environment_and_its_absence_is_the_failure(
    make_store: Any, tmp_path: Path
) -> None:
    config = MonitorConfig.create(
        "postgresql://monitor@127.0.0.1:1/wh", name="wh", password_env="WH_PW"
    )
    assert str(config.connect_url({"WH_PW": "pw-from-env"})).endswith("@127.0.0.1:1/wh")
    assert config.connect_url({"WH_PW": "pw-from-env"}).password == "pw-from-env"
    assert "pw-from-env" not in config.settings_json() + config.url
    store = make_store()
    add_monitor(store.engine, config, now=0.0)
    result = run_cycle(store, config, environ={})
    assert result.error == (
        "Monitor 'wh' takes its password from $WH_PW, which is not set in this environment; "
        "set it where lakelens runs."
    )


def test_unreachable_warehouse_messages_never_show_the_password(
    make_store: Any, tmp_path: Path
) -> None:
    secret = "pa55-w0rd-xyz"
    store = make_store()
    with closed_port() as port:
        config = MonitorConfig.create(
            f"postgresql://monitor@127.0.0.1:{port}/wh",
            name="wh",
            password_env="WH_PW",
            connect_timeout="2s",
        )
        add_monitor(store.engine, config, now=0.0)
        result = run_cycle(store, config, environ={"WH_PW": secret})
    assert result.error is not None
    assert result.error.startswith(f"cannot connect to postgresql://monitor@127.0.0.1:{port}/wh: ")
    with store.connect() as conn:
        stored = " ".join(
            str(v)
            for table in ("monitors", "heartbeats")
            for row in conn.exec_driver_sql(f"SELECT * FROM {table}").all()
            for v in row
        )
    assert secret not in stored and "Connection refused" in stored


def test_monitors_in_lakelens_yaml_are_synced_into_the_store(make_store: Any) -> None:
    yaml = """
monitors:
  warehouse:
    url: postgresql://monitor@db.internal/analytics
    password_env: WAREHOUSE_PASSWORD
    schema: public
    tables: ["orders*", "raw.*"]
    interval: 5m
    timestamp_columns: {orders: updated_at}
    freshness: {orders: 2h}
    statement_timeout: 10s
    exact_count_below: 64MB
"""
    store = make_store(yaml=yaml)
    sync_config(store.engine, store.settings, now=100.0)
    with store.connect() as conn:
        (state,) = load_monitors(conn)
    config = state.config
    assert (config.name, config.url, config.source) == (
        "warehouse",
        "postgresql://monitor@db.internal/analytics",
        "config",
    )
    assert config.schemas == ("public",) and config.tables == ("orders*", "raw.*")
    assert (config.interval, config.statement_timeout, config.exact_count_max_bytes) == (
        300.0,
        10.0,
        64_000_000,
    )
    assert config.timestamp_column("public", "orders") == "updated_at"
    assert config.freshness_for("public", "orders") == 7200.0
    assert config.wants("public", "orders_2024") and not config.wants("public", "customers")
    with pytest.raises(MonitorError, match=r"defined in lakelens\.yaml"):
        remove_monitor(store.engine, "warehouse")
    # Gone from the file: gone from the store.
    store2 = make_store(yaml="monitors: {}\n")
    sync_config(store2.engine, store2.settings)
    with store2.connect() as conn:
        assert load_monitors(conn) == []


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"w": {"password_env": "X"}}, "monitors.w in lakelens.yaml needs a url."),
        ({"w": {"url": "sqlite:///x.db", "color": "red"}}, "has unknown settings ['color']"),
        ({"w": {"url": "postgresql://u:p@h/d"}}, "Do not put the password in the monitor URL"),
        ({"w": {"url": "sqlite:///x.db", "interval": "often"}}, "Invalid interval='often'"),
    ],
)
def test_bad_monitors_sections_are_one_clear_line(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        from_config({"monitors": section}, "lakelens.yaml")
    assert message in str(raised.value)
    assert ":p@" not in str(raised.value)
