"""Valid records to build test data from, and the mail the portal wrote."""

import email
import email.policy
from pathlib import Path


def case_study_line(**overrides) -> dict:
    """Return one valid import record; keyword arguments replace its fields."""
    record = {
        "title": "Challenging Misogyny with the fire service",
        "summary": "A joint evening for officers and firefighters on everyday sexism.",
        "body": "## What we did\n\nWe ran a joint event on **misogyny** in the workplace.",
        "force": "Northants Police",
        "themes": ["Challenging misogyny", "Partnership working"],
        "partners": ["Northamptonshire Fire and Rescue Service"],
        "event_date": "2025-03-08",
        "outcomes": "120 people attended; 40 signed up as allies.",
        "contact_name": "Inspector Sarah Khan",
        "contact_email": "sarah.khan@northants.police.uk",
    }
    record.update(overrides)
    return {k: v for k, v in record.items() if v is not None}


def pdf_attachment(data: bytes, filename: str = "plan.pdf"):
    """Return an Attachment row holding these bytes, to append to a revision."""
    import hashlib

    from portal.models import Attachment

    return Attachment(
        filename=filename,
        content_type="application/pdf",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
    )


def outbox(app) -> list[email.message.EmailMessage]:
    """Run the queued jobs as a worker would, then return the messages the file mail
    backend wrote, oldest first, parsed."""
    from portal.jobs import run_queued

    run_queued(app)
    folder = Path(app.config["OUTBOX_PATH"])
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in sorted(folder.glob("*.eml"))
    ]
