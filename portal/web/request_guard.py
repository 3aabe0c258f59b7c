"""Refuse, before any view runs, requests that no page of the portal could send.

- A body that is not a form (JSON, XML, text): every page posts forms, and Flask-WTF would
  read a JSON body as if it were one, bypassing the form size cap (2 MB) and letting
  values arrive as numbers, lists or lone surrogates (415).
- A NUL character anywhere: nobody can type one, and PostgreSQL refuses it in a query,
  which was a 500 when a force name or an email address holding one reached a lookup. In a
  path value it names no page (404); in a query string or a form it is a bad request (400).
"""

from __future__ import annotations

from flask import Flask, abort, request

FORM_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data"}


def _holds_nul(pairs) -> bool:
    return any("\x00" in text for pair in pairs for text in pair)


def refuse_odd_requests() -> None:
    if any(isinstance(v, str) and "\x00" in v for v in (request.view_args or {}).values()):
        abort(404)
    if _holds_nul(request.args.items(multi=True)):
        abort(400)
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        if request.mimetype not in FORM_TYPES and (request.content_length or request.mimetype):
            abort(415)
        if _holds_nul(request.form.items(multi=True)):
            abort(400)


def register(app: Flask) -> None:
    """Install the check for every request."""
    app.before_request(refuse_odd_requests)
