"""Follow and unfollow forces and themes; the signed-in user's following page."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("follows", __name__, url_prefix="/account/following")


@bp.get("")
def following():
    """What the signed-in user follows (placeholder until follows are built)."""
    return render_template("follows/following.html")
