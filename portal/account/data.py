"""Everything the portal holds about a person, as one JSON document (the right of access).

Every table that refers to a user is here, by what refers to them (COVERED: a test reads the
models and fails when a new table is not); the mail sent to their address too. Secrets are
described, never copied: the password and recovery codes are hashes nobody can use, and the
second factor's key would let whoever holds the file make codes, so the file says whether
each is set. Emails' text is left out as it may hold a live reset link."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import func, or_, select

from ..core.times import iso_utc
from ..extensions import db
from ..models import (
    Adoption,
    AuditEvent,
    CaseStudy,
    DigestItem,
    ExternalIdentity,
    Follow,
    MailMessage,
    ModerationEvent,
    RecoveryCode,
    Revision,
    User,
    utcnow,
)

#: Each table that refers to a user, and the part of the document that holds its rows.
COVERED = {
    "recovery_code": "account.two_factor",
    "external_identity": "force_sign_ins",
    "case_study": "case_studies",
    "revision": "case_studies",
    "moderation_event": "decisions",
    "audit_event": "audit_events",
    "follow": "following",
    "digest_item": "digests",
    "adoption": "adoptions_recorded",
}


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "value"):  # an enum
        return value.value
    return value


def _row(obj: Any, *skip: str) -> dict[str, Any]:
    return {
        column.key: _value(getattr(obj, column.key))
        for column in obj.__table__.columns
        if column.key not in skip
    }


def export(user: User) -> dict[str, Any]:
    """The person's data, every part of it, as plain JSON values."""
    account = _row(
        user,
        "password_hash",
        "totp_secret",
        "totp_pending_secret",
        "totp_last_step",
        "feed_links_version",
        "session_version",
    )
    account["force"] = user.force.name
    account["password"] = "set (kept only as a one-way hash)" if user.password_hash else "none"
    codes = db.session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user.id)).all()
    account["two_factor"] = {
        "on": user.mfa_enabled,
        "since": _value(user.totp_enabled_at),
        "recovery_codes_unused": sum(1 for c in codes if c.used_at is None),
        "recovery_codes_used": [_value(c.used_at) for c in codes if c.used_at is not None],
    }
    written = db.session.scalars(
        select(CaseStudy)
        .where(
            or_(
                CaseStudy.author_id == user.id,
                CaseStudy.id.in_(
                    select(Revision.case_study_id).where(Revision.created_by_id == user.id)
                ),
            )
        )
        .order_by(CaseStudy.id)
    ).all()
    case_studies = []
    for case_study in written:
        entry = _row(case_study)
        entry["force"] = case_study.force.name
        entry["you_are_its_author"] = case_study.author_id == user.id
        entry["versions"] = [
            {**_row(r), "themes": [t.name for t in r.themes]}
            for r in case_study.revisions
            if case_study.author_id == user.id or r.created_by_id == user.id
        ]
        case_studies.append(entry)
    return {
        "about": "Everything the HeForShe Practice Library holds about you",
        "made_at": _value(utcnow()),
        "account": account,
        "force_sign_ins": [
            {**_row(i, "user_id"), "provider": i.provider.name if i.provider else None}
            for i in db.session.scalars(
                select(ExternalIdentity).where(ExternalIdentity.user_id == user.id)
            )
        ],
        "following": [
            {
                "force": f.force.name if f.force else None,
                "theme": f.theme.name if f.theme else None,
                "since": _value(f.created_at),
            }
            for f in db.session.scalars(select(Follow).where(Follow.user_id == user.id))
        ],
        "digests": [
            _row(d, "user_id")
            for d in db.session.scalars(select(DigestItem).where(DigestItem.user_id == user.id))
        ],
        "case_studies": case_studies,
        "decisions": [
            _row(m, "snapshot")
            for m in db.session.scalars(
                select(ModerationEvent)
                .where(ModerationEvent.actor_id == user.id)
                .order_by(ModerationEvent.id)
            )
        ],
        "adoptions_recorded": [
            _row(a)
            for a in db.session.scalars(select(Adoption).where(Adoption.recorded_by_id == user.id))
        ],
        "audit_events": [
            # Another person's address is theirs, not this person's data.
            {**_row(e), "ip_address": e.ip_address if e.actor_id == user.id else None}
            for e in db.session.scalars(
                select(AuditEvent)
                .where(
                    or_(
                        AuditEvent.actor_id == user.id,
                        (AuditEvent.target_type == "user") & (AuditEvent.target_id == user.id),
                    )
                )
                .order_by(AuditEvent.id)
            )
        ],
        "emails_sent_to_you": [
            _row(m, "body", "lease_until", "message_id", "reply_to")  # reply_to: the sender's
            for m in db.session.scalars(
                select(MailMessage)
                .where(func.lower(MailMessage.to) == user.email.lower())
                .order_by(MailMessage.id)
            )
        ],
    }
