"""Import case studies from JSON Lines, all or nothing.

The file is read twice: once to validate every line (nothing is written if any line is
wrong), then again to write in batches inside one transaction, so memory stays flat
however long the file is.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy import insert, select, text

from ..core import rules
from ..core.text import is_clean_text, looks_like_email
from ..extensions import db
from ..models import (
    AuditEvent,
    CaseStudy,
    Evidence,
    Revision,
    RevisionState,
    User,
    revision_partner,
    revision_theme,
    utcnow,
)
from ..reference import ensure_partners, force_lookup, key, slugify, theme_lookup
from ..search.sync import queue_change

# What a submission needs (core.rules.REQUIRED), and the force it comes from. Evidence of
# impact stays optional here: practice written up before the portal often does not say.
REQUIRED = (*(name for name in rules.REQUIRED if name != "evidence"), "force")
OPTIONAL = ("partners", "author_email", "status", "evidence", "lessons")
STATUSES = {
    "published": RevisionState.PUBLISHED,
    "submitted": RevisionState.SUBMITTED,
    "draft": RevisionState.DRAFT,
}
BATCH_SIZE = 1000
# An import of at least this many refreshes PostgreSQL's statistics of the tables it filled.
ANALYZE_AFTER = 500
ANALYZED = ("case_study", "revision", "revision_theme", "revision_partner", "partner",
            "search_entry", "search_word", "search_outbox")  # fmt: skip
MAX_REPORTED_ERRORS = 20
#: The longest line read: room for every field at its limit, escaped as JSON (non-ASCII
#: text escaped as \\uXXXX takes six bytes a character). A longer line is refused unread.
MAX_LINE_BYTES = 2 * 1024 * 1024


class ImportFailed(Exception):
    """The file has invalid lines; `errors` holds (line number, reason) pairs."""

    def __init__(self, errors: list[tuple[int, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"line {n}: {reason}" for n, reason in errors))


@dataclass(frozen=True)
class ImportRecord:
    line: int
    title: str
    summary: str
    body: str
    force_id: int
    theme_ids: tuple[int, ...]
    partners: tuple[str, ...]
    event_date: date
    outcomes: str
    lessons: str
    evidence: Evidence | None
    contact_name: str
    contact_email: str
    author_id: int | None
    state: RevisionState


class _Invalid(Exception):
    pass


class _Lookups:
    def __init__(self) -> None:
        self.forces = force_lookup()
        self.themes = theme_lookup()
        self.users = {
            key(email): user_id
            for user_id, email in db.session.execute(select(User.id, User.email))
        }


def _text(data: dict, name: str, *, required: bool, max_length: int | None = None) -> str:
    value = data.get(name)
    if value is None:
        if required:
            raise _Invalid(f"'{name}' is missing")
        return ""
    if not isinstance(value, str):
        raise _Invalid(f"'{name}' must be text")
    multiline = rules.TEXT_FIELDS[name][2] if name in rules.TEXT_FIELDS else False
    if not is_clean_text(value, multiline=multiline):
        raise _Invalid(f"'{name}' contains control characters or invalid Unicode")
    value = value.strip()
    if required and not value:
        raise _Invalid(f"'{name}' is empty")
    if max_length is not None and len(value) > max_length:
        raise _Invalid(f"'{name}' is longer than {max_length} characters")
    return value


def _limited(data: dict, name: str) -> str:
    """Read a text field of the case-study rules: required as a submission is, within its limit."""
    return _text(data, name, required=name in REQUIRED, max_length=rules.TEXT_FIELDS[name][0])


def _string_list(data: dict, name: str) -> list[str]:
    value = data.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Invalid(f"'{name}' must be a list of text")
    if not all(is_clean_text(v, multiline=False) for v in value):
        raise _Invalid(f"'{name}' contains control characters or invalid Unicode")
    return [" ".join(v.split()) for v in value if v.strip()]


def _unique_by_key(names: list[str]) -> list[str]:
    seen: dict[str, str] = {}
    for name in names:
        seen.setdefault(key(name), name)
    return list(seen.values())


def _parse_record(line_number: int, raw: str, lookups: _Lookups) -> ImportRecord:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as error:
        raise _Invalid(f"not valid JSON ({error.msg} at column {error.colno})") from None
    except (ValueError, RecursionError):  # a 5,000-digit number, or [[[[... nested too deep
        raise _Invalid("not valid JSON (a number too long or nesting too deep)") from None
    if not isinstance(data, dict):
        raise _Invalid("each line must be a JSON object")
    unknown = sorted(set(data) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise _Invalid(f"unknown field {unknown[0]!r}")  # repr: no escape codes reach a terminal

    title, summary, body = (_limited(data, name) for name in ("title", "summary", "body"))

    force_name = _text(data, "force", required=True)
    force_id = lookups.forces.get(key(force_name))
    if force_id is None:
        raise _Invalid(f"unknown force '{force_name}'")

    theme_ids: list[int] = []
    for name in _string_list(data, "themes"):
        theme_id = lookups.themes.get(key(name))
        if theme_id is None:
            raise _Invalid(f"unknown theme '{name}'")
        if theme_id not in theme_ids:
            theme_ids.append(theme_id)
    if not rules.THEMES_MIN <= len(theme_ids) <= rules.THEMES_MAX:
        raise _Invalid(f"'themes' must name {rules.THEMES_MIN} to {rules.THEMES_MAX} themes")

    partners = _unique_by_key(_string_list(data, "partners"))
    if len(partners) > rules.PARTNERS_MAX:
        raise _Invalid(f"'partners' names more than {rules.PARTNERS_MAX} organisations")
    if any(len(p) > rules.PARTNER_MAX for p in partners):
        raise _Invalid(f"a partner name is longer than {rules.PARTNER_MAX} characters")

    raw_date = _text(data, "event_date", required=True)
    event_date = rules.parse_event_date(raw_date)
    if event_date is None:
        raise _Invalid(
            f"'event_date' {raw_date!r} is not a date in the form YYYY-MM-DD "
            f"between {rules.EARLIEST_YEAR} and {rules.LATEST_YEAR}"
        )

    contact_email = _text(data, "contact_email", required=True)
    if not looks_like_email(contact_email):
        raise _Invalid(f"'contact_email' {contact_email!r} is not an email address")

    author_id = None
    author_email = _text(data, "author_email", required=False)
    if author_email:
        author_id = lookups.users.get(key(author_email))
        if author_id is None:
            raise _Invalid(f"no user has the email '{author_email}'")

    status = _text(data, "status", required=False) or "published"
    if status not in STATUSES:
        raise _Invalid(f"'status' must be one of {', '.join(STATUSES)}")

    evidence_value = _text(data, "evidence", required=False)
    try:
        evidence = Evidence(evidence_value) if evidence_value else None
    except ValueError:
        choices = ", ".join(e.value for e in Evidence)
        raise _Invalid(f"'evidence' must be one of {choices}") from None

    return ImportRecord(
        line=line_number,
        title=title,
        summary=summary,
        body=body,
        force_id=force_id,
        theme_ids=tuple(theme_ids),
        partners=tuple(partners),
        event_date=event_date,
        outcomes=_limited(data, "outcomes"),
        lessons=_limited(data, "lessons"),
        evidence=evidence,
        contact_name=_limited(data, "contact_name"),
        contact_email=contact_email,
        author_id=author_id,
        state=STATUSES[status],
    )


Source = Path | list[str]


class _Unreadable(str):
    """What stands for a line that could not be read; the text says why."""


def _lines(source: Source) -> Iterator[str]:
    """Yield each line as text, or _Unreadable for one that is too long or not UTF-8."""
    if isinstance(source, list):
        yield from source
        return
    with source.open("rb") as handle:
        number = 0
        while raw := handle.readline(MAX_LINE_BYTES + 1):
            number += 1
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                while (rest := handle.readline(1024 * 1024)) and not rest.endswith(b"\n"):
                    pass  # skip the rest of the line without holding it
                yield _Unreadable(
                    f"the line is longer than {MAX_LINE_BYTES // (1024 * 1024)} MB"
                    " (one case study per line)"
                )
                continue
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):  # Excel and Notepad add a BOM
                raw = raw[3:]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                yield _Unreadable("the line is not UTF-8 text")


def _read_records(source: Source, lookups: _Lookups) -> Iterator[ImportRecord | tuple[int, str]]:
    for line_number, raw in enumerate(_lines(source), start=1):
        if isinstance(raw, _Unreadable):
            yield (line_number, str(raw))
            continue
        if not raw.strip():
            continue
        try:
            yield _parse_record(line_number, raw, lookups)
        except _Invalid as error:
            yield (line_number, str(error))


def validate(source: Source) -> int:
    """Check every line; return how many case studies there are or raise ImportFailed."""
    lookups = _Lookups()
    errors: list[tuple[int, str]] = []
    count = 0
    for item in _read_records(source, lookups):
        if isinstance(item, tuple):
            errors.append(item)
            if len(errors) >= MAX_REPORTED_ERRORS:
                break
        else:
            count += 1
    if errors:
        raise ImportFailed(errors)
    return count


def import_case_studies(
    source: str | Path | list[str], actor_id: int | None = None, label: str = "", progress=None
) -> int:
    """Validate every line (a file's, or a list's), then write them all in one transaction."""
    source = source if isinstance(source, list) else Path(source)
    label = label or (source.name if isinstance(source, Path) else "lines")
    validate(source)
    lookups = _Lookups()
    partners = _PartnerIds()
    now = utcnow()
    written = 0
    try:
        batch: list[ImportRecord] = []
        for record in _read_records(source, lookups):
            if isinstance(record, tuple):  # the file changed since it was validated
                raise ImportFailed([record])
            batch.append(record)
            if len(batch) == BATCH_SIZE:
                written += _write_batch(batch, partners, now)
                batch = []
                if progress and written % (BATCH_SIZE * 10) == 0:
                    progress(written)
        if batch:
            written += _write_batch(batch, partners, now)
        db.session.add(
            AuditEvent(
                actor_id=actor_id,
                action="case_studies.imported",
                detail=json.dumps({"source": label, "count": written}),
            )
        )
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    if written >= ANALYZE_AFTER and db.engine.dialect.name == "postgresql":
        # Statistics for what was just loaded, now rather than when autovacuum next looks
        # (up to a minute): until then PostgreSQL plans searches over the new entries
        # blind, 10-30 times slower (a GIN scan of every entry for "version > n").
        db.session.execute(text(f"ANALYZE {', '.join(ANALYZED)}"))
        db.session.commit()
    return written


class _PartnerIds:
    """Find or create partner organisations by name, remembering ids across batches."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}

    def resolve(self, names: list[str]) -> dict[str, int]:
        # Repeats kept: a new partner takes the spelling most lines use.
        missing = [n for n in names if key(n) not in self.ids]
        if missing:
            self.ids.update(ensure_partners(missing))
        return self.ids


def _write_batch(records: list[ImportRecord], partners: _PartnerIds, now) -> int:
    partner_ids = partners.resolve([p for r in records for p in r.partners])
    published = [r.state == RevisionState.PUBLISHED for r in records]
    case_ids = db.session.scalars(
        insert(CaseStudy).returning(CaseStudy.id, sort_by_parameter_order=True),
        [
            {
                "slug": slugify(r.title),
                "force_id": r.force_id,
                "author_id": r.author_id,
                "created_at": now,
                "first_published_at": now if is_published else None,
            }
            for r, is_published in zip(records, published, strict=True)
        ],
    ).all()
    revision_ids = db.session.scalars(
        insert(Revision).returning(Revision.id, sort_by_parameter_order=True),
        [
            {
                "case_study_id": case_id,
                "number": 1,
                "state": r.state,
                "title": r.title,
                "summary": r.summary,
                "body": r.body,
                "event_date": r.event_date,
                "outcomes": r.outcomes,
                "lessons": r.lessons,
                "evidence": r.evidence,
                "contact_name": r.contact_name,
                "contact_email": r.contact_email,
                "created_by_id": r.author_id,
                "created_at": now,
                "updated_at": now,
                "submitted_at": now if r.state != RevisionState.DRAFT else None,
                "published_at": now if is_published else None,
            }
            for r, case_id, is_published in zip(records, case_ids, published, strict=True)
        ],
    ).all()
    theme_rows = [
        {"revision_id": rev_id, "theme_id": theme_id}
        for r, rev_id in zip(records, revision_ids, strict=True)
        for theme_id in r.theme_ids
    ]
    partner_rows = [
        {"revision_id": rev_id, "partner_id": partner_ids[key(name)]}
        for r, rev_id in zip(records, revision_ids, strict=True)
        for name in r.partners
    ]
    db.session.execute(insert(revision_theme), theme_rows)
    if partner_rows:
        db.session.execute(insert(revision_partner), partner_rows)
    published_ids = [c for c, is_published in zip(case_ids, published, strict=True) if is_published]
    if published_ids:  # after the themes and partners: an index in the database reads them now
        queue_change(*published_ids)
    return len(records)
