"""Refuse a request whose address holds a NUL character, before any view reads it.

No page takes one, PostgreSQL refuses it in a query (which was a 500), and SQLite would
compare it silently. Forms are left to their fields' own checks, so the error shows next
to the field; query strings and path values never reach a form.
"""

from __future__ import annotations

from flask import Flask, abort, request


def refuse_nul() -> None:
    if any(isinstance(v, str) and "\x00" in v for v in (request.view_args or {}).values()):
        abort(404)  # no such page
    if any("\x00" in text for pair in request.args.items(multi=True) for text in pair):
        abort(400)


def register(app: Flask) -> None:
    """Install the check for every request."""
    app.before_request(refuse_nul)
