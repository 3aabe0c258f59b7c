"""The limits a case study's content must keep, shared by the form and the importer."""

import re

TITLE_MAX = 200
SUMMARY_MAX = 300
THEMES_MIN = 1
THEMES_MAX = 3
PARTNER_MAX = 160
CONTACT_NAME_MAX = 120
EMAIL_MAX = 254

# Deliberately loose: one @, a dot in the domain, no spaces. Delivery proves the rest.
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def looks_like_email(value: str) -> bool:
    """Return True when `value` has the shape of an email address."""
    return len(value) <= EMAIL_MAX and bool(EMAIL_PATTERN.match(value))
