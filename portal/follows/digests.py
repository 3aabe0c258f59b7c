"""Email each user one digest of the newly published case studies they follow, never twice.

A case study goes into a user's digest when it was first published within the window
(7 days by default), is still published and not archived, and its force or one of its
themes is followed by the user, who is active and wants the digest.

Never twice: the run claims each case study for the user by inserting a DigestItem row
(INSERT ... ON CONFLICT DO NOTHING on the unique user/case-study pair) and records the
email in that same transaction. Two runs at once therefore never both send the same case
study to the same user: the database gives each pair to one of them. Delivery is the job
queue's (portal/jobs/mail.py): retried until the mail server takes it, never sent twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app, has_request_context, render_template
from sqlalchemy import exists, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from ..core.links import external_url
from ..core.live import live_revisions
from ..extensions import db
from ..mail import queue_mail
from ..models import (
    CaseStudy,
    DigestItem,
    Follow,
    Revision,
    User,
    UserStatus,
    revision_theme,
    utcnow,
)
from .services import followed_ids

DEFAULT_DAYS = 7


@dataclass
class DigestRun:
    """What one run of send-digests did."""

    digests: int = 0
    case_study_ids: set[int] = field(default_factory=set)
    failed: int = 0

    @property
    def case_studies(self) -> int:
        return len(self.case_study_ids)


def recipients() -> list[int]:
    """Return the ids of active users who want the digest and follow something."""
    query = (
        select(User.id)
        .where(
            User.status == UserStatus.ACTIVE,
            User.wants_digest.is_(True),
            exists().where(Follow.user_id == User.id),
        )
        .order_by(User.id)
    )
    return list(db.session.scalars(query))


def due(user: User, since: datetime, until: datetime) -> list[Revision]:
    """Return the published revisions `user` should get and has not had, oldest first."""
    forces = select(Follow.force_id).where(Follow.user_id == user.id, Follow.force_id.is_not(None))
    themes = select(Follow.theme_id).where(Follow.user_id == user.id, Follow.theme_id.is_not(None))
    on_followed_theme = exists().where(
        revision_theme.c.revision_id == Revision.id, revision_theme.c.theme_id.in_(themes)
    )
    already_sent = exists().where(
        DigestItem.user_id == user.id, DigestItem.case_study_id == CaseStudy.id
    )
    query = (
        live_revisions()
        .where(
            CaseStudy.first_published_at >= since,
            CaseStudy.first_published_at <= until,
            or_(CaseStudy.force_id.in_(forces), on_followed_theme),
            ~already_sent,
        )
        .order_by(CaseStudy.first_published_at, CaseStudy.id)
    )
    return list(db.session.scalars(query))


def _insert():
    dialect = db.session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(DigestItem)


def claim(user_id: int, case_study_ids: Iterable[int], at: datetime) -> set[int]:
    """Record, in the caller's transaction, these case studies as sent to the user; return
    those no other run had claimed."""
    claimed = set()
    for case_study_id in case_study_ids:
        statement = (
            _insert()
            .values(user_id=user_id, case_study_id=case_study_id, sent_at=at)
            .on_conflict_do_nothing(index_elements=["user_id", "case_study_id"])
            .returning(DigestItem.case_study_id)  # no row back when another run has it
        )
        if db.session.execute(statement).scalar_one_or_none() is not None:
            claimed.add(case_study_id)
    return claimed


def _reasons(revision: Revision, force_ids: frozenset[int], theme_ids: frozenset[int]):
    names = [revision.case_study.force.name] if revision.case_study.force_id in force_ids else []
    return names + [t.name for t in revision.themes if t.id in theme_ids]


def _digest_for(user: User, revisions: list[Revision], days: int) -> tuple[str, str]:
    followed = followed_ids(user)
    items = [
        {
            "revision": revision,
            "link": external_url(
                "casestudies.show",
                case_study_id=revision.case_study_id,
                slug=revision.case_study.slug,
            ),
            "reasons": _reasons(revision, followed.force_ids, followed.theme_ids),
        }
        for revision in revisions
    ]
    body = render_template(
        "mail/digest.txt",
        user=user,
        items=items,
        days=days,
        following_link=external_url("follows.following"),
    )
    count = len(items)
    subject = f"Your weekly digest: {count} new case stud{'y' if count == 1 else 'ies'}"
    return subject, body


def send_digests(days: int = DEFAULT_DAYS, now: datetime | None = None) -> DigestRun:
    """Send every due digest: one email per user, each case study at most once per user."""
    until = now or utcnow()
    since = until - timedelta(days=days)
    run = DigestRun()
    # Links are built outside any web request: a bare request context lets url_for work,
    # and external_url puts BASE_URL in front.
    context = nullcontext() if has_request_context() else current_app.test_request_context()
    with context:
        for user_id in recipients():
            user = db.session.get(User, user_id)
            if user is None:  # closed since the list was read
                continue
            revisions = due(user, since, until)
            if not revisions:
                continue
            claimed = claim(user.id, [r.case_study_id for r in revisions], utcnow())
            revisions = [r for r in revisions if r.case_study_id in claimed]
            if not revisions:
                db.session.rollback()
                continue  # another run got there first
            try:
                subject, body = _digest_for(user, revisions, days)
                queue_mail(user.email, subject, body)
                db.session.commit()
            except Exception:  # noqa: BLE001 - one user's failure must not stop the others
                current_app.logger.exception("could not write the digest of user %s", user.id)
                db.session.rollback()  # the claim goes with it: the next run tries again
                run.failed += 1
                continue
            run.digests += 1
            run.case_study_ids.update(claimed)
            db.session.expunge_all()  # keep memory flat over many users
    return run
