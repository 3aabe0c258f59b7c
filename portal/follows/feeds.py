"""Atom feeds of newly published case studies: the library, each force, each theme."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("feeds", __name__)
