"""Give templates the few helpers they share: site name, dates, evidence labels, links."""

from datetime import date, datetime

from flask import Flask

from ..core.links import external_url
from ..core.times import days_ago as _days_ago
from ..core.times import format_date, format_datetime, format_time, iso_utc
from ..models import EVIDENCE_LABELS, utcnow


def days_ago(value: date | datetime | None) -> str:
    """today, yesterday, 3 days ago: counted in UK days up to now."""
    return _days_ago(value, utcnow())


def register(app: Flask) -> None:
    """Install filters and globals."""
    # Every time shown is UK time (core/times.py); stored times stay UTC.
    app.add_template_filter(format_date, "date")
    app.add_template_filter(format_time, "time")
    app.add_template_filter(format_datetime, "datetime")
    app.add_template_filter(iso_utc, "iso")
    app.add_template_filter(days_ago, "days_ago")
    app.add_template_global(external_url, "external_url")

    @app.context_processor
    def _site():
        return {"site_name": app.config["SITE_NAME"], "evidence_labels": EVIDENCE_LABELS}
