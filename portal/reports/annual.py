"""The annual report of a year: what it holds, and its page as HTML (for people and the PDF).

The page (/reports/annual/<year>) and the job that makes its PDF (services.py) read the
report through these functions, so the PDF is always the page as it would be printed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import (
    current_app,
    get_flashed_messages,
    render_template,
    stream_with_context,
)
from flask_wtf.csrf import generate_csrf
from sqlalchemy import select

from ..core.live import is_live
from ..extensions import db
from ..models import (
    AdoptionKind,
    CaseStudy,
    Evidence,
    Force,
    Partner,
    Revision,
    Theme,
    User,
    UserStatus,
    revision_partner,
    revision_theme,
    utcnow,
)
from . import figures

HIGHLIGHTS_PER_THEME = 3
# Highlights put what worked first, then what is promising.
EVIDENCE_ORDER = {
    Evidence.WORKED: 0,
    Evidence.PROMISING: 1,
    Evidence.UNTESTED: 2,
    Evidence.DID_NOT_WORK: 3,
    None: 4,
}


def years() -> list[int]:
    """Return the years a report can cover: from the first publication to this year."""
    this_year = utcnow().year
    first = figures.first_published_year() or this_year
    return list(range(this_year, min(first, this_year) - 1, -1))


@dataclass(frozen=True, slots=True)
class Named:
    """A force, theme or partner as a report shows it, free of any database session."""

    id: int
    name: str
    slug: str = ""


@dataclass(frozen=True, slots=True)
class Contact:
    """A force's listed HeForShe contact, as the report names them."""

    name: str
    contact_role: str
    email: str


@dataclass(frozen=True, slots=True)
class ReportCaseStudy:
    """A case study as its report shows it: where its page is and whose practice it is."""

    id: int
    slug: str
    force_id: int
    force: Named


@dataclass(frozen=True, slots=True)
class ReportEntry:
    """A live revision as the report shows it: its summary and facts, never its text.

    Read with a few plain queries (an ORM object per revision, with its themes, partners,
    case study and force, took most of a 2,000 case study page's time), and complete before
    the page is written: nothing is read from the database while the page streams.
    """

    id: int
    case_study_id: int
    case_study: ReportCaseStudy
    title: str
    summary: str
    event_date: date | None
    evidence: Evidence | None
    contact_name: str
    themes: list[Named]
    partners: list[Named]


def published_in(year: int) -> list[ReportEntry]:
    """Return the live revisions of case studies first published in the year, by force."""
    in_year = figures.in_year(CaseStudy.first_published_at, year)
    rows = db.session.execute(
        select(
            Revision.id,
            Revision.case_study_id,
            Revision.title,
            Revision.summary,
            Revision.event_date,
            Revision.evidence,
            Revision.contact_name,
            CaseStudy.slug,
            CaseStudy.force_id,
        )
        .join(Revision.case_study)
        .join(CaseStudy.force)
        .where(is_live(), in_year)
        .order_by(Force.name, CaseStudy.first_published_at, CaseStudy.id)
    ).all()
    forces = {row.id: Named(*row) for row in db.session.execute(select(*_named_columns(Force)))}
    themes = {row.id: Named(*row) for row in db.session.execute(select(*_named_columns(Theme)))}
    themes_of = _themes_of(in_year)
    partners_of: dict[int, list[Named]] = defaultdict(list)
    for revision_id, partner_id, name in db.session.execute(
        select(revision_partner.c.revision_id, Partner.id, Partner.name)
        .join(Partner, Partner.id == revision_partner.c.partner_id)
        .join(Revision, Revision.id == revision_partner.c.revision_id)
        .join(Revision.case_study)
        .where(is_live(), in_year)
        .order_by(Partner.name, Partner.id)
    ):
        partners_of[revision_id].append(Named(partner_id, name))
    return [
        ReportEntry(
            id=row.id,
            case_study_id=row.case_study_id,
            case_study=ReportCaseStudy(
                row.case_study_id, row.slug, row.force_id, forces[row.force_id]
            ),
            title=row.title,
            summary=row.summary,
            event_date=row.event_date,
            evidence=row.evidence,
            contact_name=row.contact_name,
            themes=[themes[theme_id] for theme_id in themes_of.get(row.id, ())],
            partners=partners_of.get(row.id, []),
        )
        for row in rows
    ]


def _named_columns(model) -> tuple:
    return (model.id, model.name, model.slug)


def _themes_of(in_year) -> dict[int, list[int]]:
    """Return the theme ids of each live revision of the year, in the themes' order."""
    linked: dict[int, list[int]] = defaultdict(list)
    for revision_id, theme_id in db.session.execute(
        select(revision_theme.c.revision_id, revision_theme.c.theme_id)
        .join(Theme, Theme.id == revision_theme.c.theme_id)
        .join(Revision, Revision.id == revision_theme.c.revision_id)
        .join(Revision.case_study)
        .where(is_live(), in_year)
        .order_by(Theme.position, Theme.id)
    ):
        linked[revision_id].append(theme_id)
    return linked


def _contacts(forces: list[Named]) -> dict[int, list[Contact]]:
    """Return each force's listed HeForShe contacts (as forces.queries.contacts_of), at once."""
    contacts: dict[int, list[Contact]] = defaultdict(list)
    for force_id, name, role, email in db.session.execute(
        select(User.force_id, User.name, User.contact_role, User.email)
        .where(
            User.force_id.in_([force.id for force in forces]),
            User.listed_as_contact.is_(True),
            User.status == UserStatus.ACTIVE,
        )
        .order_by(User.name)
    ):
        contacts[force_id].append(Contact(name, role or "", email))
    return contacts


def contents(year: int) -> dict[str, Any]:
    """Return everything the report of `year` shows (the template's context, but the date).

    Everything is read here, before a page is written: the page streams what this returns.
    """
    revisions = published_in(year)
    # One count of adoptions for the headline, the sentence and every "taken up by".
    adoptions = figures.adoptions(year)
    adopted = adoptions.per_case_study
    by_force: dict[int, list[ReportEntry]] = defaultdict(list)
    for revision in revisions:
        by_force[revision.case_study.force_id].append(revision)
    forces = [revisions_[0].case_study.force for revisions_ in by_force.values()]
    contacts = _contacts(forces)
    # The same counts as figures.by_theme(year), from the revisions already read.
    counted = Counter(theme.id for revision in revisions for theme in revision.themes)
    theme_counts = [
        (Named(*row), counted.get(row.id, 0))
        for row in db.session.execute(
            select(*_named_columns(Theme)).order_by(Theme.position, Theme.name)
        )
    ]
    themes = []
    for theme, count in theme_counts:
        if not count:
            continue
        on_theme = [r for r in revisions if theme in r.themes]
        highlights = sorted(
            on_theme,
            key=lambda r: (
                EVIDENCE_ORDER[r.evidence],
                -adopted.get(r.case_study_id, 0),
                r.title.casefold(),
            ),
        )[:HIGHLIGHTS_PER_THEME]
        theme_forces = sorted({r.case_study.force.name for r in on_theme})
        themes.append((theme, count, theme_forces, highlights))
    return {
        "year": year,
        "revisions": revisions,
        "forces": [(force, by_force[force.id], contacts.get(force.id, [])) for force in forces],
        "themes": themes,
        "uncovered": [t for t, n in theme_counts if not n],
        "moderation": figures.moderation(year),
        "adoptions": adoptions,
        "adopted": adopted,
        "kinds": AdoptionKind,
    }


def page(report: dict[str, Any], **extra: Any) -> str:
    """Return the report's page as HTML, made now (needs a request context for its links)."""
    return render_template("reports/annual.html", generated=utcnow(), **report, **extra)


#: The page is sent in pieces of about this many bytes as it is written.
STREAM_CHUNK = 32 * 1024


def page_stream(report: dict[str, Any], **extra: Any) -> Iterator[str]:
    """Return the report's page as HTML written while it is sent, in pieces.

    Call it once everything that can fail has been read (`contents`): after the first piece
    the status is sent and an error can no longer become an error page. The session is
    settled first too (the CSRF token made, flashed messages taken), since its cookie goes
    out with the status.
    """
    generate_csrf()
    get_flashed_messages(with_categories=True)  # kept for the page by the request
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    template = app.jinja_env.get_template("reports/annual.html")
    context = {"generated": utcnow(), **report, **extra}
    app.update_template_context(context)

    def pieces() -> Iterator[str]:
        buffered: list[str] = []
        size = 0
        for piece in template.generate(context):
            buffered.append(piece)
            size += len(piece)
            if size >= STREAM_CHUNK:
                yield "".join(buffered)
                buffered, size = [], 0
        if buffered:
            yield "".join(buffered)

    return stream_with_context(pieces())
