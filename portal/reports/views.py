"""The dashboard (/reports) and the annual report (/reports/annual/<year>)."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("reports", __name__, url_prefix="/reports")


@bp.get("")
def dashboard():
    """Figures from the library (placeholder until the dashboard is built)."""
    return render_template("reports/dashboard.html")
