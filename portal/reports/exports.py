"""CSV and JSON exports of published case studies, with the library's filters, streamed."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("exports", __name__, url_prefix="/reports")
