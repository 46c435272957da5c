"""Settings: environment beats lakelens.yaml; bad values fail with the name of the setting."""

from __future__ import annotations

import pytest

from lakelens.config import load_settings
from lakelens.errors import ConfigError
from lakelens.units import format_duration, parse_duration, parse_percent, parse_severity


def test_defaults(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={})
    assert settings.home.name == ".lakelens" and settings.retention_days == 30
    assert settings.resolved_database_url == f"sqlite:///{(tmp_path / '.lakelens' / 'lakelens.db')}"


def test_environment_beats_yaml_and_overrides_beat_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lakelens.yaml").write_text("retention_days: 10\nlog_level: debug\nqueue_size: 5\n")
    settings = load_settings(env={"LAKELENS_RETENTION_DAYS": "20"}, queue_size=7)
    assert (settings.retention_days, settings.log_level, settings.queue_size) == (20, "DEBUG", 7)
    assert settings.config_file is not None and settings.config_file.name == "lakelens.yaml"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"LAKELENS_LOG_FORMAT": "xml"},
            "Invalid LAKELENS_LOG_FORMAT='xml': expected one of json, console, none.",
        ),
        (
            {"LAKELENS_QUEUE_SIZE": "-1"},
            "Invalid LAKELENS_QUEUE_SIZE='-1': expected a whole number above 0.",
        ),
        (
            {"LAKELENS_CONFIG": "/nonexistent/l.yaml"},
            "LAKELENS_CONFIG points to /nonexistent/l.yaml",
        ),
    ],
)
def test_bad_settings_name_the_setting(env, message, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_settings(env=env)
    assert str(info.value).startswith(message)


def test_broken_yaml_names_the_line(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lakelens.yaml").write_text("retention_days: 10\n  bad: [\n")
    with pytest.raises(ConfigError, match=r"lakelens.yaml is not valid YAML at line \d"):
        load_settings(env={})


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("30m", 1800),
        ("2h", 7200),
        ("1h30m", 5400),
        ("7d", 604800),
        ("2 hours", 7200),
        ("1.5h", 5400),
        (45, 45),
        ("500ms", 0.5),
    ],
)
def test_durations(text, seconds) -> None:
    assert parse_duration(text) == seconds


def test_severities_and_percents() -> None:
    assert [parse_severity(s) for s in ("P1", "p2", "WARN", "info", "Critical")] == [
        "critical",
        "error",
        "warning",
        "info",
        "critical",
    ]
    assert parse_percent("99.9%") == pytest.approx(0.999) and parse_percent(0.95) == 0.95
    assert [format_duration(s) for s in (0.152, 5.2, 90, 8280, 200000)] == [
        "152ms",
        "5.2s",
        "1.5m",
        "2.3h",
        "2.3d",
    ]
