"""Reaching out from a case study: contact its author, record that a force adopted it."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("outreach", __name__, url_prefix="/case-studies")
