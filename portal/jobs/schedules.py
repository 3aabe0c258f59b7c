"""When the scheduled jobs run: every minute, or at a time of day in the UK in every season.

Huey asks each periodic job's test once a minute with the time in UTC (naive, as it runs
with utc=True). A test made by `uk_time` says yes during exactly one minute of the chosen
day: the minute at which the clocks in the UK show that time, in GMT and in BST alike. When
the clocks go back, the hour that happens twice fires only the first time; when they go
forward, a time in the skipped hour fires at the moment it would have been shown (01:30
fires at 01:30 GMT, which the clocks show as 02:30 BST).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

UK = ZoneInfo("Europe/London")
#: The days as PORTAL_DIGEST_DAY names them, Monday first (datetime.weekday's order).
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

Test = Callable[[datetime], bool]


def as_utc(moment: datetime) -> datetime:
    """Return `moment` as an aware UTC datetime; a naive one is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def uk_time(hour: int, minute: int = 0, *, day: str | None = None) -> Test:
    """Return a test that is true in the one minute when the UK's clocks show hour:minute
    (on `day` only, mon..sun, when given)."""
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise ValueError(f"{hour:02}:{minute:02} is not a time of day")
    weekday = None if day is None else DAYS.index(day)

    def due(now: datetime) -> bool:
        utc = as_utc(now).replace(second=0, microsecond=0)
        today = utc.astimezone(UK).date()
        if weekday is not None and today.weekday() != weekday:
            return False
        # fold=0: the first of a repeated time; a skipped time maps to where it would be.
        wanted = datetime.combine(today, time(hour, minute), tzinfo=UK).astimezone(UTC)
        return utc == wanted

    return due


def _always(now: datetime) -> bool:
    return True


def every_minute(config: dict[str, Any]) -> Test:
    """The schedule of a job that runs at each of the scheduler's checks: once a minute."""
    return _always


def daily_uk(hour: int, minute: int = 0) -> Callable[[dict[str, Any]], Test]:
    """The schedule of a job that runs once a day at hour:minute UK time."""

    def schedule(config: dict[str, Any]) -> Test:
        return uk_time(hour, minute)

    return schedule
