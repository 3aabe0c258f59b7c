"""The force directory (/forces) and a page per force (/forces/<slug>)."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("forces", __name__, url_prefix="/forces")


@bp.get("")
def index():
    """List every force (placeholder until the directory is built)."""
    return render_template("forces/index.html")
