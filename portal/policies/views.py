"""The accessibility statement, the privacy notice and the cookies page (linked from every
page's footer). What differs between deployments (who runs it, contacts, the lawful basis)
comes from the configuration; the retention periods and the cookies are read from the same
settings the portal acts on, so the pages can never disagree with what it does."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from flask import Blueprint, current_app, render_template

from ..jobs.retention import periods

bp = Blueprint("policies", __name__)

#: What the lawful bases are called, with their article of the UK GDPR.
LAWFUL_BASES = {
    "public_task": (
        "public task",
        "Article 6(1)(e) of the UK GDPR: the processing is necessary for a task carried out "
        "in the public interest, here police forces sharing what works for gender equality",
    ),
    "legitimate_interests": (
        "legitimate interests",
        "Article 6(1)(f) of the UK GDPR: the processing is necessary for the legitimate "
        "interests of the forces sharing what works for gender equality",
    ),
}

#: Known accessibility issues, with when each was found and when it is to be fixed.
KNOWN_ISSUES = (
    (
        "Files that contributors attach to case studies (PDFs, documents) may not be "
        "accessible: the library does not check them. Each case study's text is on its page.",
        "2026-11-20",
        "Contributors are asked for accessible files; no date, as the library does not make them",
    ),
    (
        "The annual report's PDF is tagged, but has not been tested with every screen reader. "
        "The same report is an accessible web page.",
        "2026-11-30",
        "2027-03-31",
    ),
)


@dataclass(frozen=True)
class Cookie:
    name: str
    purpose: str
    lifetime: str


def cookies() -> list[Cookie]:
    """Every cookie the portal sets (tests/functional/test_policies.py fails on any other)."""
    config = current_app.config
    return [
        Cookie(
            name=config["SESSION_COOKIE_NAME"],
            purpose=(
                "Remembers that you are signed in, and holds the security token that stops "
                "other websites sending forms in your name. It holds no tracking or analytics."
            ),
            lifetime=(
                "Until you close your browser. You are signed out after "
                f"{config['SESSION_IDLE_MINUTES']} minutes without using the library, or "
                f"{config['SESSION_MAX_HOURS']} hours after signing in."
            ),
        )
    ]


def _contacts() -> dict[str, str]:
    config = current_app.config
    return {
        "organisation": config["ORGANISATION"],
        "contact": config["CONTACT_EMAIL"],
        "dpo": config["DPO_CONTACT"],
    }


@bp.get("/accessibility")
def accessibility():
    """The accessibility statement, in the shape of the GOV.UK model statement."""
    reviewed = date.fromisoformat(str(current_app.config["ACCESSIBILITY_REVIEWED"]))
    return render_template(
        "policies/accessibility.html", reviewed=reviewed, issues=KNOWN_ISSUES, **_contacts()
    )


@bp.get("/privacy")
def privacy():
    """The privacy notice: what is kept, why, who sees it, for how long, people's rights."""
    basis = LAWFUL_BASES[current_app.config["LAWFUL_BASIS"]]
    return render_template(
        "policies/privacy.html", basis=basis, periods=periods(), cookies=cookies(), **_contacts()
    )


@bp.get("/cookies")
def cookies_page():
    """The cookies the portal sets: all strictly necessary, so no banner asks for consent."""
    return render_template("policies/cookies.html", cookies=cookies(), **_contacts())
