"""Times shown to people are UK time, right across the clock changes."""

from datetime import date, datetime

from portal.core.times import days_ago, format_date, format_datetime, format_time, iso_utc


def test_summer_time_moves_the_day_and_the_hour():
    late = datetime(2026, 6, 30, 23, 30)  # naive UTC, as stored
    assert format_date(late) == "1 July 2026"
    assert format_datetime(late) == "1 July 2026 at 12:30am"


def test_winter_time_is_gmt():
    assert format_datetime(datetime(2026, 1, 30, 23, 30)) == "30 January 2026 at 11:30pm"


def test_the_hour_the_clocks_go_forward_and_back():
    # 29 March 2026: 01:00 UTC is 2am BST; 25 October 2026: 01:00 UTC is 1am GMT again.
    assert format_time(datetime(2026, 3, 29, 0, 59)) == "12:59am"
    assert format_time(datetime(2026, 3, 29, 1, 0)) == "2am"
    assert format_time(datetime(2026, 10, 25, 0, 30)) == "1:30am"  # BST
    assert format_time(datetime(2026, 10, 25, 1, 30)) == "1:30am"  # GMT


def test_midday_midnight_and_plain_dates():
    assert format_time(datetime(2026, 1, 5, 12, 0)) == "midday"
    assert format_time(datetime(2026, 1, 5, 0, 0)) == "midnight"
    assert format_date(date(2026, 3, 5)) == "5 March 2026"
    assert format_date(None) == ""


def test_machine_readable_time_is_utc():
    assert iso_utc(datetime(2026, 6, 30, 23, 30)) == "2026-06-30T23:30:00+00:00"


def test_days_ago_counts_uk_days():
    now = datetime(2026, 7, 1, 8, 0)
    assert days_ago(datetime(2026, 7, 1, 0, 5), now) == "today"
    # 23:30 UTC on 30 June is already 1 July in the UK
    assert days_ago(datetime(2026, 6, 30, 23, 30), now) == "today"
    assert days_ago(datetime(2026, 6, 30, 12, 0), now) == "yesterday"
    assert days_ago(datetime(2026, 6, 28, 12, 0), now) == "3 days ago"
