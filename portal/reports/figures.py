"""Count what the library holds: the figures behind force pages, the dashboard and the report.

A case study counts once it is published and not archived ("live"). Its year is the year it
first reached the library (`CaseStudy.first_published_at`): the reporting year in which the
practice was shared, which is what the annual HeForShe progress report covers.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import extract, func, select

from ..core.live import is_live
from ..extensions import db
from ..models import (
    Adoption,
    AdoptionKind,
    CaseStudy,
    Evidence,
    Force,
    ModerationAction,
    ModerationEvent,
    Revision,
    RevisionState,
    Theme,
    revision_theme,
)

DECISIONS = (
    ModerationAction.APPROVED,
    ModerationAction.CHANGES_REQUESTED,
    ModerationAction.REJECTED,
)
SECONDS_PER_DAY = 86_400


def _year(column):
    return extract("year", column)


def in_year(column, year: int):
    """Return the condition that a naive UTC time falls in the year, as a range.

    The same rows as `extract("year", column) == year`, but a range can use the column's
    index where a function of it cannot (SQLite and PostgreSQL alike).
    """
    return (column >= datetime(year, 1, 1)) & (column < datetime(year + 1, 1, 1))


def _live(query, year: int | None = None, force_id: int | None = None):
    """Limit a query over Revision to live case studies, optionally of one year or force."""
    query = query.where(is_live())
    if year is not None:
        query = query.where(in_year(CaseStudy.first_published_at, year))
    if force_id is not None:
        query = query.where(CaseStudy.force_id == force_id)
    return query


def first_published_year() -> int | None:
    """Return the year the first live case study reached the library (None when none has)."""
    published = (
        select(Revision.id)
        .where(Revision.case_study_id == CaseStudy.id, Revision.state == RevisionState.PUBLISHED)
        .exists()
    )
    # Walks the index on first_published_at and stops at the first live case study.
    first = db.session.scalar(
        select(CaseStudy.first_published_at)
        .where(
            CaseStudy.first_published_at.is_not(None),
            CaseStudy.archived_at.is_(None),
            published,
        )
        .order_by(CaseStudy.first_published_at)
        .limit(1)
    )
    return first.year if first is not None else None


def total_live(year: int | None = None) -> int:
    """Return how many case studies are live (first published in `year`, if given)."""
    query = _live(select(func.count()).select_from(Revision).join(Revision.case_study), year)
    return db.session.scalar(query) or 0


def by_year(force_id: int | None = None) -> list[tuple[int, int]]:
    """Return (year, live case studies first published that year), oldest first."""
    year = _year(CaseStudy.first_published_at)
    query = _live(
        select(year, func.count()).select_from(Revision).join(Revision.case_study),
        force_id=force_id,
    ).group_by(year)
    return sorted((int(y), n) for y, n in db.session.execute(query) if y is not None)


def by_force(year: int | None = None) -> list[tuple[Force, int]]:
    """Return (force, live case studies) for every force with any, most first."""
    query = _live(
        select(CaseStudy.force_id, func.count()).select_from(Revision).join(Revision.case_study),
        year,
    ).group_by(CaseStudy.force_id)
    counts = dict(db.session.execute(query).all())
    forces = db.session.scalars(select(Force).where(Force.id.in_(list(counts)))).all()
    return sorted(((f, counts[f.id]) for f in forces), key=lambda row: (-row[1], row[0].name))


def by_theme(year: int | None = None, force_id: int | None = None) -> list[tuple[Theme, int]]:
    """Return (theme, live case studies) for every theme, in the themes' own order."""
    query = _live(
        select(revision_theme.c.theme_id, func.count())
        .select_from(Revision)
        .join(Revision.case_study)
        .join(revision_theme, revision_theme.c.revision_id == Revision.id),
        year,
        force_id,
    ).group_by(revision_theme.c.theme_id)
    counts = dict(db.session.execute(query).all())
    themes = db.session.scalars(select(Theme).order_by(Theme.position, Theme.name)).all()
    return [(t, counts.get(t.id, 0)) for t in themes]


def by_evidence(year: int | None = None) -> list[tuple[str, int]]:
    """Return (evidence label, live case studies) for each level, then those not stated."""
    query = _live(
        select(Revision.evidence, func.count()).select_from(Revision).join(Revision.case_study),
        year,
    ).group_by(Revision.evidence)
    counts = dict(db.session.execute(query).all())
    rows = [(level.label, counts.get(level, 0)) for level in Evidence]
    return rows + [("Not stated", counts.get(None, 0))]


@dataclass(frozen=True)
class Moderation:
    submissions: int  # times a revision was submitted in the year
    decisions: Counter  # ModerationAction -> decisions taken in the year
    median_days: float | None  # from submission to the decision that followed it
    first_decided: int  # revisions whose first decision came in the year
    approved_first_time: int  # ... and that first decision was to approve

    @property
    def share_approved_first_time(self) -> float | None:
        if not self.first_decided:
            return None
        return self.approved_first_time / self.first_decided


def moderation(year: int) -> Moderation:
    """Return the year's moderation figures, decided by when each event happened."""
    submissions = db.session.scalar(
        select(func.count())
        .select_from(ModerationEvent)
        .where(
            ModerationEvent.action == ModerationAction.SUBMITTED,
            in_year(ModerationEvent.at, year),
        )
    )
    # Revisions with a decision in the year, with every submission and decision they had:
    # a decision's wait runs from the latest submission before it.
    decided = (
        select(ModerationEvent.revision_id)
        .where(ModerationEvent.action.in_(DECISIONS), in_year(ModerationEvent.at, year))
        .distinct()
    )
    events = db.session.execute(
        select(ModerationEvent.revision_id, ModerationEvent.action, ModerationEvent.at)
        .where(
            ModerationEvent.revision_id.in_(decided),
            ModerationEvent.action.in_((ModerationAction.SUBMITTED, *DECISIONS)),
        )
        .order_by(ModerationEvent.revision_id, ModerationEvent.at, ModerationEvent.id)
    ).all()
    decisions: Counter = Counter()
    waits: list[float] = []
    first_decided = approved_first_time = 0
    submitted_at = {}
    seen_decision: set[int] = set()
    for revision_id, action, at in events:
        if action == ModerationAction.SUBMITTED:
            submitted_at[revision_id] = at
            continue
        first = revision_id not in seen_decision
        seen_decision.add(revision_id)
        since = submitted_at.pop(revision_id, None)
        if at.year != year:
            continue
        decisions[action] += 1
        if since is not None:
            waits.append((at - since).total_seconds() / SECONDS_PER_DAY)
        if first:
            first_decided += 1
            approved_first_time += action == ModerationAction.APPROVED
    return Moderation(
        submissions=submissions or 0,
        decisions=decisions,
        median_days=statistics.median(waits) if waits else None,
        first_decided=first_decided,
        approved_first_time=approved_first_time,
    )


@dataclass(frozen=True)
class Coverage:
    themes: list[Any]  # Theme, or anything with its id, name and slug
    forces: list[Any]  # Force, likewise
    published: dict[int, set[int]]  # theme id -> ids of forces that published on it

    def missing(self, theme: Any) -> list[Any]:
        return [f for f in self.forces if f.id not in self.published.get(theme.id, set())]


def coverage(year: int) -> Coverage:
    """Return which forces published a live case study on each theme in the year."""
    rows = db.session.execute(
        _live(
            select(revision_theme.c.theme_id, CaseStudy.force_id)
            .select_from(Revision)
            .join(Revision.case_study)
            .join(revision_theme, revision_theme.c.revision_id == Revision.id),
            year,
        ).distinct()
    )
    published: dict[int, set[int]] = defaultdict(set)
    for theme_id, force_id in rows:
        published[theme_id].add(force_id)
    return Coverage(
        themes=list(db.session.scalars(select(Theme).order_by(Theme.position, Theme.name))),
        forces=list(db.session.scalars(select(Force).order_by(Force.name))),
        published=dict(published),
    )


@dataclass(frozen=True)
class Adoptions:
    total: int
    by_kind: dict[AdoptionKind, int]
    forces_adopting: int  # distinct forces that recorded an adoption
    most_adopted: list[tuple[int, str, str, int]]  # case study id, slug, title, adoptions
    per_case_study: dict[int, int]  # case study id -> adoptions (forces that took it up)


def adoptions(year: int | None = None, limit: int = 10) -> Adoptions:
    """Return the adoptions, recorded to date, of live case studies (first published in
    `year`, if given).

    This is the one count of adoptions: a year means the case study's year, as for every
    other figure here, so a report's headline total is the sum of the "taken up by" counts
    of the case studies it lists. (A force adopts a case study once: the count for a case
    study is the number of other forces that took it up.)
    """
    found = _live(
        select(Adoption.case_study_id, Adoption.force_id, Adoption.kind)
        .select_from(Adoption)
        .join(Adoption.case_study)
        .join(Revision, Revision.case_study_id == CaseStudy.id),
        year,
    ).subquery()
    # The adoptions read once (a few per case study at most) and counted here...
    rows = db.session.execute(select(found)).all()
    by_kind = Counter(kind for _, _, kind in rows)
    forces_adopting = len({force_id for _, force_id, _ in rows})
    per_case_study = dict(Counter(case_study_id for case_study_id, _, _ in rows))
    # ...but the most adopted ranked by the database (ties by title, in its collation).
    count = func.count().label("n")
    most = db.session.execute(
        select(CaseStudy.id, CaseStudy.slug, Revision.title, count)
        .join(found, found.c.case_study_id == CaseStudy.id)
        .join(
            Revision,
            (Revision.case_study_id == CaseStudy.id) & (Revision.state == RevisionState.PUBLISHED),
        )
        .group_by(CaseStudy.id, CaseStudy.slug, Revision.title)
        .order_by(count.desc(), Revision.title)
        .limit(limit)
    ).all()
    return Adoptions(
        total=sum(by_kind.values()),
        by_kind={kind: by_kind.get(kind, 0) for kind in AdoptionKind},
        forces_adopting=forces_adopting,
        most_adopted=[(row[0], row[1], row[2], row[3]) for row in most],
        per_case_study=per_case_study,
    )
