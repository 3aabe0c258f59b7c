"""The case-study rules: what an author writes, the limits it keeps, what a submission needs.

One table of limits and one of required fields, with the messages people read: the form
shows them next to the fields, the service enforces them for whoever calls it, and the
importer checks the same fields against the same numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from ..models import Evidence, Revision
from .text import is_clean_text, looks_like_email

#: The longest each text field may be, what it is called in a message, and whether it
#: may hold line breaks (one-line fields reach email subjects and feed titles).
TEXT_FIELDS: dict[str, tuple[int, str, bool]] = {
    "title": (200, "a title", False),
    "summary": (300, "a summary", True),
    "body": (100_000, "a description", True),
    "outcomes": (20_000, "outcomes", True),
    "lessons": (20_000, "lessons learned", True),
    "contact_name": (120, "a contact name", False),
}
TITLE_MAX = TEXT_FIELDS["title"][0]
SUMMARY_MAX = TEXT_FIELDS["summary"][0]
BODY_MAX = TEXT_FIELDS["body"][0]
OUTCOMES_MAX = TEXT_FIELDS["outcomes"][0]
LESSONS_MAX = TEXT_FIELDS["lessons"][0]
CONTACT_NAME_MAX = TEXT_FIELDS["contact_name"][0]
THEMES_MIN = 1
THEMES_MAX = 3
PARTNERS_MAX = 4
PARTNER_MAX = 160
COMMENT_MAX = 5_000  # a moderator's comment or reason

EARLIEST_YEAR = 1990
LATEST_YEAR = 2100
DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)

#: What a submission must have (drafts may lack any of it), with what to say when it is
#: missing. The importer asks the same of a published or submitted line.
REQUIRED: dict[str, str] = {
    "title": "Enter a title",
    "summary": "Enter a summary",
    "body": "Describe what you did",
    "themes": f"Choose {THEMES_MIN} to {THEMES_MAX} themes",
    "event_date": "Enter the date of the event or when the scheme started",
    "outcomes": "Describe the outcomes",
    "evidence": "Say what evidence of impact there is",
    "contact_name": "Enter a contact name",
    "contact_email": "Enter a contact email address",
}
ONE_LINE_PROBLEM = "Remove the line breaks and control characters from this text"
CONTROL_PROBLEM = "Remove the control characters from this text"
EMAIL_PROBLEM = "Enter an email address in the correct format, like name@force.police.uk"
TOO_MANY_PARTNERS = f"Name at most {PARTNERS_MAX} partner organisations"
PARTNER_TOO_LONG = f"Enter a partner name of {PARTNER_MAX} characters or fewer"
TOO_MANY_THEMES = f"Choose at most {THEMES_MAX} themes"
COMMENT_TOO_LONG = f"Enter a comment of {COMMENT_MAX:,} characters or fewer"


def too_long(name: str) -> str:
    """Return the message for a text field past its limit."""
    most, label, _ = TEXT_FIELDS[name]
    return f"Enter {label} of {most:,} characters or fewer"


@dataclass
class Content:
    """What an author writes; the same fields for a draft and a submission."""

    title: str = ""
    summary: str = ""
    body: str = ""
    theme_ids: list[int] = field(default_factory=list)
    partners: list[str] = field(default_factory=list)
    event_date: date | None = None
    outcomes: str = ""
    lessons: str = ""
    evidence: Evidence | None = None
    contact_name: str = ""
    contact_email: str = ""

    @classmethod
    def of(cls, revision: Revision) -> Content:
        return cls(
            title=revision.title,
            summary=revision.summary,
            body=revision.body,
            theme_ids=[t.id for t in revision.themes],
            partners=[p.name for p in revision.partners],
            event_date=revision.event_date,
            outcomes=revision.outcomes,
            lessons=revision.lessons,
            evidence=revision.evidence,
            contact_name=revision.contact_name,
            contact_email=revision.contact_email,
        )


def content_problems(content: Content) -> dict[str, str]:
    """Return which limit the content breaks, whoever sends it (form, import, a script)."""
    problems = {}
    for name, (most, _, multiline) in TEXT_FIELDS.items():
        value = getattr(content, name)
        if len(value) > most:
            problems[name] = too_long(name)
        elif not is_clean_text(value, multiline=multiline):
            problems[name] = CONTROL_PROBLEM if multiline else ONE_LINE_PROBLEM
    if content.contact_email and not looks_like_email(content.contact_email):
        problems["contact_email"] = EMAIL_PROBLEM
    if len(content.theme_ids) > THEMES_MAX:
        problems["themes"] = TOO_MANY_THEMES
    partners = [p for p in content.partners if p.strip()]
    if len(partners) > PARTNERS_MAX:
        problems["partners"] = TOO_MANY_PARTNERS
    elif any(len(p) > PARTNER_MAX or not is_clean_text(p, multiline=False) for p in partners):
        problems["partners"] = PARTNER_TOO_LONG
    return problems


def submission_problems(content: Content) -> dict[str, str]:
    """Return what is missing before a case study can go to moderation."""
    present = {
        "themes": THEMES_MIN <= len(content.theme_ids) <= THEMES_MAX,
        "event_date": content.event_date is not None,
        "evidence": content.evidence is not None,
    }
    return {
        name: message
        for name, message in REQUIRED.items()
        if not present.get(name, bool(str(getattr(content, name, "")).strip()))
    }


def parse_event_date(value: str) -> date | None:
    """Return the date written as YYYY-MM-DD in a plausible range, else None."""
    if not DATE_PATTERN.match(value):
        return None
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        return None
    return parsed if EARLIEST_YEAR <= parsed.year <= LATEST_YEAR else None
