"""What the report pages show, kept by each process per version of the library's data.

Working out the dashboard's figures takes a dozen GROUP BY scans of every live case study,
and a year's report reads every case study of the year; the version of the data
(`library_version`) takes a few lookups answered by indexes and small tables. Each process
keeps what it made for the version it last saw: a load finds it while nothing has changed,
and makes it again on the first load after any change. The version is read from the
database itself, not bumped by the code that writes: every process and both setups agree
on it, and no way of writing (a moderator's decision, an adoption, an archive, an admin
renaming a force, an import, a restored backup) can leave a page stale.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from flask import current_app
from sqlalchemy import Row, case, func, select

from ..extensions import db
from ..models import (
    Adoption,
    CaseStudy,
    Force,
    ModerationEvent,
    Revision,
    RevisionState,
    Theme,
    User,
    UserStatus,
    revision_partner,
    revision_theme,
    utcnow,
)

T = TypeVar("T")


def library_version() -> Any:
    """Return what changes whenever anything the dashboard or a report shows could change.

    Each part is one lookup that an index or a small table answers without reading the
    case studies' text (about 5 ms at 10,000 case studies on SQLite): which revisions are in
    each state (a publication, a supersession, an archive: a published revision's content
    is never edited, a change is a new revision), the case studies' forces and dates, every
    moderation event, every adoption (recorded, changed or removed), the themes and
    partners of every revision, the names of forces and themes, the listed contacts, and
    this year. It covers all that `services.data_version` (a year's PDF) reads.
    """
    parts: list[Any] = [utcnow().year]
    parts.append(
        db.session.execute(
            select(
                Revision.state, func.count(), func.sum(Revision.id), func.max(Revision.published_at)
            )
            .group_by(Revision.state)
            .order_by(Revision.state)
        ).all()
    )
    parts.append(
        db.session.execute(
            select(
                func.count(),
                func.max(CaseStudy.id),
                func.sum(CaseStudy.force_id),
                func.count(CaseStudy.archived_at),
                func.sum(case((CaseStudy.archived_at.is_(None), 0), else_=CaseStudy.id)),
                func.max(CaseStudy.first_published_at),
                func.min(CaseStudy.first_published_at),
            )
        ).one()
    )
    # A published version is edited in place only when its author's account is closed (its
    # contact handed over or removed): the newest such change.
    parts.append(
        db.session.scalar(
            select(func.max(Revision.updated_at)).where(Revision.state == RevisionState.PUBLISHED)
        )
    )
    # Moderation events are only ever added (or deleted with their case study).
    parts.append(db.session.scalar(select(func.max(ModerationEvent.id))))
    parts.append(
        db.session.execute(
            select(
                func.count(),
                func.max(Adoption.id),
                func.max(Adoption.updated_at),
                func.sum(Adoption.force_id),
                func.sum(Adoption.case_study_id),
            )
        ).one()
    )
    parts.append(
        db.session.execute(
            select(
                func.count(),
                func.sum(revision_theme.c.theme_id),
                func.sum(revision_theme.c.revision_id),
            )
        ).one()
    )
    parts.append(
        db.session.execute(
            select(
                func.count(),
                func.sum(revision_partner.c.partner_id),
                func.sum(revision_partner.c.revision_id),
            )
        ).one()
    )
    parts.append(
        db.session.execute(select(Force.id, Force.name, Force.slug).order_by(Force.id)).all()
    )
    parts.append(
        db.session.execute(
            select(User.id, User.force_id, User.name, User.contact_role, User.email)
            .where(User.listed_as_contact.is_(True), User.status == UserStatus.ACTIVE)
            .order_by(User.id)
        ).all()
    )
    parts.append(
        db.session.execute(
            select(Theme.id, Theme.name, Theme.slug, Theme.position).order_by(Theme.id)
        ).all()
    )
    return _plain(parts)


def _plain(value: Any) -> Any:
    """Rows and lists as tuples of text: equal versions compare equal whatever the driver."""
    if isinstance(value, list | tuple | Row):
        return tuple(_plain(item) for item in value)
    return str(value)


class _Store:
    """What one app made for one version of the data, by key, in this process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.version: Any = None
        self.made: dict[Hashable, Any] = {}


def kept(name: str, key: Hashable, make: Callable[[], T], *, limit: int) -> T:
    """Return what `make` made for `key` while the data is unchanged, else make it now.

    Up to `limit` keys are kept under each `name`; a new version of the data drops them all.
    """
    stores = current_app.extensions.setdefault("reports_kept", {})
    store: _Store = stores.setdefault(name, _Store())
    version = library_version()
    with store.lock:
        if store.version != version:
            store.version, store.made = version, {}
        if key in store.made:
            return store.made[key]
    made = make()  # outside the lock: another thread may make the same meanwhile
    with store.lock:
        if store.version == version:
            if len(store.made) >= limit:
                store.made.clear()
            store.made[key] = made
    return made
