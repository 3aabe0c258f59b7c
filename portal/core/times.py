"""Times as people in the UK read them: stored in UTC, shown in UK time (GMT or BST).

Every datetime the portal stores is naive UTC (models.utcnow). Everything shown to a
person, on a page or in an email, passes through here, so a case study approved at
23:30 UTC on 30 June is "1 July 2026 at 12:30am" (BST), and the same time in January is
"30 January 2026 at 11:30pm" (GMT).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

UK = ZoneInfo("Europe/London")


def in_uk(value: datetime) -> datetime:
    """Return `value` (naive UTC, or aware) as an aware UK time."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UK)


def uk_date(value: date | datetime) -> date:
    """The calendar day in the UK: a datetime converted first, a date as it is."""
    return in_uk(value).date() if isinstance(value, datetime) else value


def format_date(value: date | datetime | None) -> str:
    """The GOV.UK way: 5 March 2026 (a datetime on its UK day)."""
    if value is None:
        return ""
    day = uk_date(value)
    return f"{day.day} {day:%B %Y}"


def format_time(value: datetime | None) -> str:
    """The GOV.UK way in UK time: 9am, 2:05pm, midday, midnight."""
    if value is None:
        return ""
    local = in_uk(value)
    if local.minute == 0 and local.hour in (0, 12):
        return "midnight" if local.hour == 0 else "midday"
    hour = local.hour % 12 or 12
    suffix = "am" if local.hour < 12 else "pm"
    return f"{hour}{suffix}" if local.minute == 0 else f"{hour}:{local.minute:02d}{suffix}"


def format_datetime(value: datetime | None) -> str:
    """5 March 2026 at 2:05pm, in UK time."""
    if value is None:
        return ""
    return f"{format_date(value)} at {format_time(value)}"


def iso_utc(value: datetime) -> str:
    """The machine-readable form for <time datetime>: UTC with its offset."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="seconds")


def days_ago(value: date | datetime | None, now: datetime) -> str:
    """How long ago in words, counted in UK calendar days: today, yesterday, 3 days ago."""
    if value is None:
        return ""
    days = (uk_date(now) - uk_date(value)).days
    if days <= 0:
        return "today"
    if days == 1:
        return "yesterday"
    return f"{days} days ago"
