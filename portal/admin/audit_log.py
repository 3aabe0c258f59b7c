"""The audit log as admins read it: filters, and each event in plain English.

Filters come from a GET form (anyone may bookmark or share a filtered log). Every bad
value is refused with a message for its field, before any query runs: an odd date, an
unknown person, an event nobody records, a number too large for the database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import selectinload

from ..audit import EVENT_GROUPS, EVENT_NAMES, OTHER_GROUP, describe, group_of
from ..auth.services import find_user_by_email
from ..core.errors import FieldErrors
from ..core.text import looks_like_email
from ..core.times import UK
from ..extensions import db
from ..models import AuditEvent, CaseStudy, Force, Revision, Synonym, User
from ..pagination import Page, paginate

PER_PAGE = 50
#: The largest id the database's integers hold: anything larger names nobody.
LARGEST_ID = 2**31 - 1
EARLIEST_YEAR, LATEST_YEAR = 2000, 2100


@dataclass(frozen=True)
class AuditFilters:
    """What the log is narrowed to; None leaves a filter off."""

    action: str | None = None
    person: User | None = None
    start: date | None = None  # UK days, both included
    end: date | None = None

    @property
    def active(self) -> bool:
        return any((self.action, self.person, self.start, self.end))


# Reading the filters


def event_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """Return the events to filter by, grouped: every event the portal names, and any
    other event the log holds (a new one not named yet), each group by name."""
    codes = set(EVENT_NAMES)
    codes.update(db.session.scalars(select(AuditEvent.action).distinct()))  # indexed
    groups: dict[str, list[tuple[str, str]]] = {}
    for code in codes:
        groups.setdefault(group_of(code), []).append((code, describe(code)))
    order = list(dict.fromkeys([*EVENT_GROUPS.values(), OTHER_GROUP]))
    return [
        (name, sorted(groups[name], key=lambda choice: choice[1].casefold()))
        for name in order
        if name in groups
    ]


def read_filters(
    event: str | None,
    person: str | None,
    start: tuple[str | None, str | None, str | None],
    end: tuple[str | None, str | None, str | None],
    known_events: set[str],
) -> AuditFilters:
    """Return the filters a person asked for, or raise FieldErrors naming each bad one.

    `start` and `end` are (day, month, year) as typed; the keys of the errors are the
    form's: event, person, start_day, end_day.
    """
    errors: dict[str, str] = {}
    action = (event or "").strip() or None
    if action is not None and action not in known_events:
        errors["event"] = "Choose an event from the list"
    found = None
    try:
        found = _person(person or "")
    except ValueError as problem:
        errors["person"] = str(problem)
    first = last = None
    try:
        first = _day(start, "Start date")
    except ValueError as problem:
        errors["start_day"] = str(problem)
    try:
        last = _day(end, "End date")
    except ValueError as problem:
        errors["end_day"] = str(problem)
    if first and last and last < first:
        errors["end_day"] = "End date must be the same as or after the start date"
    if errors:
        raise FieldErrors(errors)
    return AuditFilters(action=action, person=found, start=first, end=last)


def _person(typed: str) -> User | None:
    typed = typed.strip()
    if not typed:
        return None
    if len(typed) > 254:
        raise ValueError("Enter an email address of 254 characters or fewer")
    if typed.isdecimal():  # an account's number, as links to the log carry
        number = int(typed) if len(typed) <= 10 else LARGEST_ID + 1
        user = db.session.get(User, number) if 0 < number <= LARGEST_ID else None
        if user is None:
            raise ValueError("No account has that number: enter their email address")
        return user
    if not looks_like_email(typed):
        raise ValueError("Enter an email address in the correct format, like name@force.police.uk")
    user = find_user_by_email(typed)
    if user is None:
        raise ValueError("No account has that email address")
    return user


def _day(parts: tuple[str | None, str | None, str | None], label: str) -> date | None:
    """Return the day typed as (day, month, year), None when all three are blank."""
    day, month, year = ((part or "").strip() for part in parts)
    if not (day or month or year):
        return None
    named = (("day", day), ("month", month), ("year", year))
    missing = [name for name, value in named if not value]
    if missing:
        raise ValueError(f"{label} must include a {' and a '.join(missing)}")
    real = f"{label} must be a real date, like 5 3 2026"
    if not all(value.isascii() and value.isdigit() and len(value) <= 4 for _, value in named):
        raise ValueError(real)
    if len(year) != 4:
        raise ValueError(f"{label} must have a year with 4 digits, like 2026")
    try:
        found = date(int(year), int(month), int(day))
    except ValueError:
        raise ValueError(real) from None
    if not EARLIEST_YEAR <= found.year <= LATEST_YEAR:
        raise ValueError(f"{label} must be between {EARLIEST_YEAR} and {LATEST_YEAR}")
    return found


def _utc_start_of(day: date) -> datetime:
    """The first moment of a UK day, as the naive UTC the log stores."""
    return datetime.combine(day, time(), tzinfo=UK).astimezone(UTC).replace(tzinfo=None)


# Finding events


def find(filters: AuditFilters, page: int = 1, per_page: int = PER_PAGE) -> Page:
    """Return one page of the events matching `filters`, newest first."""
    query = select(AuditEvent).options(selectinload(AuditEvent.actor))
    if filters.action:
        query = query.where(AuditEvent.action == filters.action)
    if filters.person is not None:
        query = query.where(
            or_(
                AuditEvent.actor_id == filters.person.id,
                and_(AuditEvent.target_type == "user", AuditEvent.target_id == filters.person.id),
            )
        )
    if filters.start:
        query = query.where(AuditEvent.at >= _utc_start_of(filters.start))
    if filters.end:
        query = query.where(AuditEvent.at < _utc_start_of(filters.end + timedelta(days=1)))
    return paginate(query.order_by(AuditEvent.id.desc()), page, per_page)


# Showing events


@dataclass(frozen=True)
class Target:
    """What an event was done to, as it can be shown: a person, a case study, a synonym."""

    kind: str
    id: int | None
    label: str
    exists: bool = True
    user: User | None = None


@dataclass(frozen=True)
class Entry:
    """One event as the log shows it."""

    event: AuditEvent
    name: str
    actor: User | None
    target: Target | None
    details: list[tuple[str, str]] = field(default_factory=list)

    @property
    def target_is_actor(self) -> bool:
        return (
            self.target is not None
            and self.target.kind == "user"
            and self.actor is not None
            and self.target.id == self.actor.id
        )


def entries(events: list[AuditEvent]) -> list[Entry]:
    """Return the events in plain English, their targets looked up a page at a time."""
    wanted: dict[str, set[int]] = {}
    for event in events:
        if event.target_type and event.target_id is not None:
            wanted.setdefault(event.target_type, set()).add(event.target_id)
    targets = _targets(wanted)
    forces = {slug: name for slug, name in db.session.execute(select(Force.slug, Force.name))}
    found = []
    for event in events:
        target = None
        if event.target_type:
            target = targets.get((event.target_type, event.target_id)) or _missing(event)
        found.append(
            Entry(
                event=event,
                name=describe(event.action),
                actor=event.actor,
                target=target,
                details=detail_rows(event, forces),
            )
        )
    return found


def _targets(wanted: dict[str, set[int]]) -> dict[tuple[str, int | None], Target]:
    targets: dict[tuple[str, int | None], Target] = {}
    if wanted.get("user"):
        for user in db.session.scalars(select(User).where(User.id.in_(wanted["user"]))):
            targets["user", user.id] = Target("user", user.id, user.name, user=user)
    if wanted.get("case_study"):
        # The newest version's title: the one the admin would see on opening it.
        rows = db.session.execute(
            select(Revision.case_study_id, Revision.title)
            .join(CaseStudy, CaseStudy.id == Revision.case_study_id)
            .where(Revision.case_study_id.in_(wanted["case_study"]))
            .order_by(Revision.case_study_id, Revision.number)
        )
        for case_study_id, title in rows:
            label = title or "Untitled case study"
            targets["case_study", case_study_id] = Target("case_study", case_study_id, label)
    if wanted.get("synonym"):
        for synonym in db.session.scalars(select(Synonym).where(Synonym.id.in_(wanted["synonym"]))):
            targets["synonym", synonym.id] = Target("synonym", synonym.id, synonym.term)
    return targets


_KINDS = {"user": "Account", "case_study": "Case study", "synonym": "Synonym"}


def _missing(event: AuditEvent) -> Target:
    """A target no longer there (a deleted case study or synonym), or of another kind."""
    kind = event.target_type or ""
    name = _KINDS.get(kind, kind.replace("_", " ").capitalize())
    stored = _detail(event)
    remembered = stored.get("title") or stored.get("term")
    if isinstance(remembered, str) and remembered.strip():
        label = remembered.strip()
    else:
        label = f"{name} {event.target_id}" if event.target_id is not None else name
    return Target(kind, event.target_id, label, exists=kind not in _KINDS)


# Details


KEY_LABELS = {
    "from": "From",
    "to": "To",
    "method": "How",
    "email": "Email address typed",
    "force": "Force",
    "role": "Role",
    "status": "Status",
    "source": "Source",
    "count": "How many",
    "term": "Short form",
    "expansion": "Stands for",
    "for": "While",
    "listed_as_contact": "Listed as a HeForShe contact",
    "contact_role": "HeForShe role",
    "name": "Name",
    "title": "Title",
    "files_kept": "Files kept",
    "revision": "Version",
    "characters": "Message length (characters)",
    "kind": "Kind",
    "note_characters": "Note length (characters)",
    "format": "Format",
    "filters": "Search",
    "contact_email": "With contact email addresses",
}
METHODS = {
    "password": "Password",
    "password+totp": "Password and security code",
    "email_confirmation": "Confirmed their email address with their password",
}
WHILE = {
    "change_password": "changing their password",
    "enable_mfa": "turning on two-factor authentication",
    "disable_mfa": "turning off two-factor authentication",
    "regenerate_recovery_codes": "getting new recovery codes",
}
#: Keys whose true or false says whether something changed, not yes or no.
CHANGED_FLAGS = {"name", "force", "contact_role"}
#: Events whose from and to are roles or statuses.
CAPITALISED = {"admin.user_role_changed", "admin.user_status_changed"}
LONGEST_VALUE = 500


def _detail(event: AuditEvent) -> dict[str, Any]:
    try:
        found = json.loads(event.detail or "{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def detail_rows(event: AuditEvent, forces: dict[str, str]) -> list[tuple[str, str]]:
    """Return an event's details as (label, value) rows, its IP address last."""
    try:
        stored = json.loads(event.detail or "{}")
    except ValueError:
        stored = event.detail
    rows: list[tuple[str, str]] = []
    if isinstance(stored, dict):
        for key, value in stored.items():
            label = KEY_LABELS.get(key) or _humanise(key)
            rows.append((label, _value(event.action, key, value, forces)))
    elif stored not in (None, "", [], {}):
        rows.append(("Details", _cut(str(stored))))
    if event.ip_address:
        rows.append(("IP address", event.ip_address))
    return rows


def _value(action: str, key: str, value: Any, forces: dict[str, str]) -> str:
    if isinstance(value, bool):
        if key in CHANGED_FLAGS:
            return "Changed" if value else "Not changed"
        return "Yes" if value else "No"
    if value is None:
        return "None"
    if isinstance(value, dict):
        shown = "; ".join(
            f"{_humanise(str(k))}: {_value(action, str(k), v, forces)}" for k, v in value.items()
        )
        return shown or "None"
    if isinstance(value, list):
        return _cut(", ".join(_value(action, key, item, forces) for item in value)) or "None"
    text = str(value)
    if key in ("force", "from", "to") and text in forces:
        return forces[text]
    if key == "method":
        return METHODS.get(text, text)
    if key == "for":
        return WHILE.get(text, text.replace("_", " "))
    if action in CAPITALISED or key in ("role", "status"):
        return text.capitalize()
    return _cut(text)


def _humanise(key: str) -> str:
    words = " ".join(key.replace("_", " ").split())
    return words[:1].upper() + words[1:]


def _cut(text: str) -> str:
    return text if len(text) <= LONGEST_VALUE else text[: LONGEST_VALUE - 1] + "…"
