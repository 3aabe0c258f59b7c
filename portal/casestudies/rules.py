"""The limits a case study's content must keep, shared by the form and the importer."""

import re
from datetime import date

TITLE_MAX = 200
SUMMARY_MAX = 300
BODY_MAX = 100_000
OUTCOMES_MAX = 20_000
LESSONS_MAX = 20_000
THEMES_MIN = 1
THEMES_MAX = 3
PARTNERS_MAX = 4
PARTNER_MAX = 160
CONTACT_NAME_MAX = 120
COMMENT_MAX = 5_000  # a moderator's comment or reason
EMAIL_MAX = 254

EARLIEST_YEAR = 1990
LATEST_YEAR = 2100

# The addresses people really use; nothing that could add recipients or break out of a
# mailto: link (no ?, &, quotes, angle brackets, commas or spaces).
EMAIL_PATTERN = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)


def looks_like_email(value: str) -> bool:
    """Return True when `value` has the shape of an email address."""
    return len(value) <= EMAIL_MAX and bool(EMAIL_PATTERN.match(value))


def parse_event_date(value: str) -> date | None:
    """Return the date written as YYYY-MM-DD in a plausible range, else None."""
    if not DATE_PATTERN.match(value):
        return None
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        return None
    return parsed if EARLIEST_YEAR <= parsed.year <= LATEST_YEAR else None
