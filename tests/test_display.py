"""Display time zones: UTC by default, LAKELENS_TIMEZONE or --tz for people, never storage."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from lakelens.display import display_zone, format_clock, format_moment, parse_zone
from lakelens.errors import InvalidArgumentError

MOMENT = datetime(2026, 12, 7, 23, 30, 5, tzinfo=timezone.utc)


def test_utc_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAKELENS_TIMEZONE", raising=False)
    assert display_zone() is timezone.utc
    assert format_moment(MOMENT) == "2026-12-07 23:30:05 UTC"


def test_the_environment_and_an_explicit_name_choose_the_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LAKELENS_TIMEZONE", "Europe/Paris")
    # 23:30 UTC is half past midnight the next day in Paris (CET, UTC+1 in December).
    assert format_moment(MOMENT) == "2026-12-08 00:30:05 CET"
    assert format_moment(MOMENT.timestamp()) == "2026-12-08 00:30:05 CET"
    assert format_clock(MOMENT) == "00:30:05"
    tokyo = display_zone("Asia/Tokyo")
    assert format_moment(MOMENT, tokyo) == "2026-12-08 08:30:05 JST"


def test_today_drops_the_date_in_the_display_zone() -> None:
    paris = parse_zone("Europe/Paris")
    same_day_in_paris = datetime(2026, 12, 8, 10, 0, tzinfo=timezone.utc)
    assert format_moment(MOMENT, paris, now=same_day_in_paris) == "00:30:05 CET"
    # The same two moments are different days in UTC.
    assert format_moment(MOMENT, timezone.utc, now=same_day_in_paris) == "2026-12-07 23:30:05 UTC"


def test_an_unknown_zone_is_one_line_naming_what_is_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(InvalidArgumentError, match=r"Unknown time zone 'Mars/Olympus' in --tz"):
        parse_zone("Mars/Olympus")
    monkeypatch.setenv("LAKELENS_TIMEZONE", "../etc/passwd")
    with pytest.raises(InvalidArgumentError, match="in LAKELENS_TIMEZONE: use an IANA name"):
        display_zone()
    assert format_moment(None) == "—"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.0, "0ms"),
        (0.070, "70ms"),
        (0.9996, "1.0s"),  # not '1000ms'
        (5.24, "5.2s"),
        (9.96, "10s"),  # not '10.0s'
        (45.006, "45s"),  # the trace span that read '45,006ms'
        (59.7, "1.0m"),  # not '60s'
        (138, "2.3m"),
        (3599, "1.0h"),  # not '60.0m'
        (8280, "2.3h"),
        (86_390, "1.0d"),  # not '24.0h'
        (-0.050, "-50ms"),
    ],
)
def test_durations_read_in_the_unit_people_say(seconds: float, shown: str) -> None:
    from lakelens.units import format_duration

    assert format_duration(seconds) == shown
