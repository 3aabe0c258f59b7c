"""When the scheduled jobs run: every minute, or at a time of day in the UK in every season.

A job that runs at a time of day is checked every minute and claims its latest slot
(`run_once_per_slot`, table scheduled_run): a slot is run once, by one worker, however many
schedulers check it; a slot missed (no worker running, a restart in that minute, a late
check) runs at the next check instead of being skipped until next week.

Huey asks each periodic job's test once a minute with the time in UTC (naive, as it runs
with utc=True). A test made by `uk_time` says yes during exactly one minute of the chosen
day: the minute at which the clocks in the UK show that time, in GMT and in BST alike. When
the clocks go back, the hour that happens twice fires only the first time; when they go
forward, a time in the skipped hour fires at the moment it would have been shown (01:30
fires at 01:30 GMT, which the clocks show as 02:30 BST).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import ScheduledRun, utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")

UK = ZoneInfo("Europe/London")
#: The days as PORTAL_DIGEST_DAY names them, Monday first (datetime.weekday's order).
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

Test = Callable[[datetime], bool]


def as_utc(moment: datetime) -> datetime:
    """Return `moment` as an aware UTC datetime; a naive one is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


class UKTime:
    """A time of day in the UK (on one day of the week, when given).

    Called with a UTC time, it says whether that is the one minute when the UK's clocks
    show it; `latest` gives the last such moment. The worker runs a job with this schedule
    once per slot, late if need be (`run_once_per_slot`), not only in its minute.
    """

    def __init__(self, hour: int, minute: int = 0, day: str | None = None) -> None:
        if not (0 <= hour <= 23 and 0 <= minute <= 59):
            raise ValueError(f"{hour:02}:{minute:02} is not a time of day")
        self.hour, self.minute, self.day = hour, minute, day
        self.weekday = None if day is None else DAYS.index(day)

    def __call__(self, now: datetime) -> bool:
        utc = as_utc(now).replace(second=0, microsecond=0)
        today = utc.astimezone(UK).date()
        if self.weekday is not None and today.weekday() != self.weekday:
            return False
        # fold=0: the first of a repeated time; a skipped time maps to where it would be.
        wanted = datetime.combine(today, time(self.hour, self.minute), tzinfo=UK)
        return utc == wanted.astimezone(UTC)

    def latest(self, now: datetime) -> datetime:
        return latest_uk_slot(now, self.hour, self.minute, self.day)


def uk_time(hour: int, minute: int = 0, *, day: str | None = None) -> UKTime:
    """Return the schedule of the minute when the UK's clocks show hour:minute (on `day`
    only, mon..sun, when given)."""
    return UKTime(hour, minute, day)


def _always(now: datetime) -> bool:
    return True


def every_minute(config: dict[str, Any]) -> Test:
    """The schedule of a job that runs at each of the scheduler's checks: once a minute."""
    return _always


def daily_uk(hour: int, minute: int = 0) -> Callable[[dict[str, Any]], UKTime]:
    """The schedule of a job that runs once a day at hour:minute UK time."""

    def schedule(config: dict[str, Any]) -> UKTime:
        return uk_time(hour, minute)

    return schedule


def latest_uk_slot(now: datetime, hour: int, minute: int = 0, day: str | None = None) -> datetime:
    """Return the latest moment, at or before `now`, when the UK's clocks showed hour:minute
    (on `day` only, when given), as naive UTC."""
    utc = as_utc(now)
    weekday = None if day is None else DAYS.index(day)
    today = utc.astimezone(UK).date()
    for back in range(8):
        date = today - timedelta(days=back)
        if weekday is not None and date.weekday() != weekday:
            continue
        slot = datetime.combine(date, time(hour, minute), tzinfo=UK).astimezone(UTC)
        if slot <= utc:
            return slot.replace(tzinfo=None)
    raise AssertionError("a weekly slot lies within the last eight days")


def run_once_per_slot(
    name: str, slot: datetime, work: Callable[[datetime], T], now: datetime | None = None
) -> T | None:
    """Run `work(previous_slot)` if `slot` is newer than the last slot `name` ran for.

    The slot is claimed by a conditional UPDATE before the work, so of several workers
    checking at once one runs it; if the work fails, the claim is given back and the next
    check tries again. The first check ever only records the slot: a schedule starts when
    the worker first runs, and never sends last week's digest the minute it is installed.
    """
    previous = db.session.scalar(select(ScheduledRun.slot_at).where(ScheduledRun.name == name))
    if previous is None:
        try:
            db.session.execute(insert(ScheduledRun).values(name=name, slot_at=slot))
            db.session.commit()
        except IntegrityError:  # another worker's first check, a moment ago
            db.session.rollback()
        return None
    if previous >= slot:
        db.session.rollback()
        return None
    claimed = db.session.execute(
        update(ScheduledRun)
        .where(ScheduledRun.name == name, ScheduledRun.slot_at == previous)
        .values(slot_at=slot)
    ).rowcount  # type: ignore[attr-defined] # an UPDATE's CursorResult
    db.session.commit()
    if claimed != 1:
        return None
    if (now or utcnow()) - slot > timedelta(minutes=2):
        log.warning("%s: running the slot of %s UTC late (no worker ran then)", name, slot)
    try:
        return work(previous)
    except BaseException:
        db.session.rollback()
        db.session.execute(
            update(ScheduledRun)
            .where(ScheduledRun.name == name, ScheduledRun.slot_at == slot)
            .values(slot_at=previous)
        )
        db.session.commit()
        raise
