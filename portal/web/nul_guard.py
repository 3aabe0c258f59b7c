"""Refuse a request holding a NUL character, before any view reads it.

Nobody can type one, no page takes one, and PostgreSQL refuses it in a query (which was a
500: a force name or an email address holding one reached a lookup). A path value holding
one names no page (404); a query string or a form holding one is a bad request (400).
"""

from __future__ import annotations

from flask import Flask, abort, request


def _holds_nul(pairs) -> bool:
    return any("\x00" in text for pair in pairs for text in pair)


def refuse_nul() -> None:
    if any(isinstance(v, str) and "\x00" in v for v in (request.view_args or {}).values()):
        abort(404)
    if _holds_nul(request.args.items(multi=True)):
        abort(400)
    if request.method == "POST" and _holds_nul(request.form.items(multi=True)):
        abort(400)


def register(app: Flask) -> None:
    """Install the check for every request."""
    app.before_request(refuse_nul)
