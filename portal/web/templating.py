"""Give templates the few helpers they share: site name, dates, evidence labels, links."""

from datetime import date, datetime

from flask import Flask

from ..core.links import external_url
from ..models import EVIDENCE_LABELS


def format_date(value: date | datetime | None) -> str:
    """Format a date the GOV.UK way: 5 March 2026."""
    if value is None:
        return ""
    return f"{value.day} {value:%B %Y}"


def register(app: Flask) -> None:
    """Install filters and globals."""
    app.add_template_filter(format_date, "date")
    app.add_template_global(external_url, "external_url")

    @app.context_processor
    def _site():
        return {"site_name": app.config["SITE_NAME"], "evidence_labels": EVIDENCE_LABELS}
