"""Fill a fresh portal with demo accounts and published case studies."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

import pyotp
from sqlalchemy import select

from .accounts import create_user
from .auth.services import enable_mfa
from .casestudies.importer import import_case_studies
from .extensions import db
from .models import Revision, Role, User


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
    return added
