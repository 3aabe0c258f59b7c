"""Fill a fresh portal with demo accounts and published case studies."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources

import pyotp
from sqlalchemy import select

from .accounts import create_user
from .auth.services import enable_mfa
from .casestudies.importer import import_case_studies
from .extensions import db
from .models import (
    Adoption,
    AdoptionKind,
    Force,
    ModerationAction,
    ModerationEvent,
    Revision,
    RevisionState,
    Role,
    User,
    utcnow,
)
from .search.sync import queue_change


@dataclass(frozen=True)
class DemoAccount:
    role: Role
    email: str
    name: str
    force: str
    password: str
    totp_secret: str | None = None  # moderators and admins must use two-factor sign-in


# Demo only: these passwords are printed by `portal seed-demo` and in the README.
DEMO_ACCOUNTS = (
    DemoAccount(
        Role.CONTRIBUTOR,
        "sam.patel@northants.police.uk",
        "Sam Patel",
        "Northamptonshire Police",
        "rugby kit for allies 42",
    ),
    DemoAccount(
        Role.MODERATOR,
        "jo.richards@npcc.police.uk",
        "Jo Richards",
        "National Police Chiefs' Council",
        "approve with care 2026",
        "DEMOMODERATORTOTPKEYJORICHARDS23",
    ),
    DemoAccount(
        Role.ADMIN,
        "chris.lee@college.police.uk",
        "Chris Lee",
        "College of Policing",
        "keys to the library 7",
        "DEMOADMINTOTPKEYCHRISLEE23456723",
    ),
)


def demo_lines() -> list[str]:
    """Return the packaged demo case studies, the contributor's force's credited to them."""
    contributor = DEMO_ACCOUNTS[0]
    raw = resources.files("portal").joinpath("data/demo_case_studies.jsonl").read_text("utf-8")
    lines = []
    for line in raw.splitlines():
        if not line.strip():
            continue
        data = json.loads(line)
        if data["force"] == contributor.force:
            data["author_email"] = contributor.email
        lines.append(json.dumps(data))
    return lines


def seed_demo() -> dict[str, int]:
    """Create whatever demo accounts and case studies are missing; return what was added."""
    added = {"accounts": 0, "case_studies": 0}
    for account in DEMO_ACCOUNTS:
        if db.session.scalar(select(User.id).where(User.email == account.email)) is None:
            user = create_user(
                account.email, account.name, account.force, account.role, account.password
            )
            if account.totp_secret:
                user.totp_pending_secret = account.totp_secret
                enable_mfa(user, account.password, pyotp.TOTP(account.totp_secret).now())
                user.totp_last_step = None  # the demo user may sign in with the current code
                db.session.commit()
            added["accounts"] += 1
    lines = demo_lines()
    first_title = json.loads(lines[0])["title"]
    if db.session.scalar(select(Revision.id).where(Revision.title == first_title)) is None:
        added["case_studies"] = import_case_studies(lines, label="demo data")
        _demo_history()
    return added


#: Demo adoptions: (adopting force, title of the case study taken up, kind, note).
DEMO_ADOPTIONS = (
    (
        "Merseyside Police",
        "Promoting the 61016 text line to help women feel safer on trains",
        AdoptionKind.ADAPTED,
        "We used the posters and the text-line idea for our ferry terminals and bus stations.",
    ),
    (
        "Police Scotland",
        "Menopause café, line manager guidance and uniform adjustments",
        AdoptionKind.ADOPTED,
        "Menopause cafés now run monthly in three divisions, using the same guidance.",
    ),
    (
        "West Midlands Police",
        "Joint Challenging Misogyny event with Northamptonshire Fire and Rescue Service",
        AdoptionKind.ADAPTED,
        "Run with West Midlands Fire Service; we kept the scenario tables led by men.",
    ),
)


def _demo_history() -> None:
    """Give the demo case studies a year of history: when each was submitted, sent back,
    approved and published, adoptions by other forces, and a listed HeForShe contact."""
    now = utcnow()
    moderator = db.session.scalar(select(User).where(User.email == DEMO_ACCOUNTS[1].email))
    revisions = db.session.scalars(
        select(Revision)
        .join(Revision.case_study)
        .where(Revision.state == RevisionState.PUBLISHED)
        .order_by(Revision.event_date.desc(), Revision.id)
    ).all()
    for i, revision in enumerate(revisions):
        published = now - timedelta(days=35 * i + 3)
        revision.published_at = revision.case_study.first_published_at = published
        steps = [(ModerationAction.SUBMITTED, published - timedelta(days=2 + i % 6))]
        if i % 4 == 1:  # sent back once, then resubmitted
            steps = [
                (ModerationAction.SUBMITTED, published - timedelta(days=20)),
                (ModerationAction.CHANGES_REQUESTED, published - timedelta(days=16)),
                (ModerationAction.SUBMITTED, published - timedelta(days=4)),
            ]
        steps.append((ModerationAction.APPROVED, published))
        # Written, last submitted and changed when its history says, not when the demo ran.
        started = steps[0][1] - timedelta(days=3)
        revision.created_at = revision.case_study.created_at = started
        revision.updated_at = revision.submitted_at = steps[-2][1]
        queue_change(revision.case_study_id)  # the index sorts by the publication date
        for action, at in steps:
            moderated = action != ModerationAction.SUBMITTED
            db.session.add(
                ModerationEvent(
                    case_study_id=revision.case_study_id,
                    revision_id=revision.id,
                    actor_id=(moderator.id if moderator else None)
                    if moderated
                    else revision.created_by_id,
                    action=action,
                    comment="Please add the outcomes you measured."
                    if action == ModerationAction.CHANGES_REQUESTED
                    else "",
                    at=at,
                )
            )
    by_title = {r.title: r for r in revisions}
    for force_name, title, kind, note in DEMO_ADOPTIONS:
        force = db.session.scalar(select(Force).where(Force.name == force_name))
        found = by_title.get(title)
        if force is None or found is None or found.published_at is None:
            continue
        db.session.add(
            Adoption(
                case_study_id=found.case_study_id,
                force_id=force.id,
                kind=kind,
                note=note,
                created_at=min(now, found.published_at + timedelta(days=20)),
            )
        )
    contributor = db.session.scalar(select(User).where(User.email == DEMO_ACCOUNTS[0].email))
    if contributor is not None:
        contributor.listed_as_contact = True
        contributor.contact_role = "Force HeForShe lead"
    db.session.commit()
