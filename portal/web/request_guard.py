"""Deal, before any view runs, with requests that no page of the portal could send.

- A body that is not a form (JSON, XML, text) is refused (415): every page posts forms,
  and Flask-WTF would read a JSON body as if it were one, bypassing the form size cap
  (2 MB) and letting values arrive as numbers, lists or lone surrogates.
- A NUL character in the address: nobody can type one and PostgreSQL refuses it in a query
  (a 500). In a path value it names no page (404); a query parameter holding one is
  dropped, as the pages drop any other value they cannot use, so a shared link still opens.
  In a form, each field's own check refuses it with a message next to the field, and the
  lookups that take what people type (find_force, find_user_by_email) find nothing.
"""

from __future__ import annotations

from flask import Flask, abort, request
from werkzeug.datastructures import ImmutableMultiDict

FORM_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data"}


def _nul_in(text: str) -> bool:
    return "\x00" in text


def tidy_request() -> None:
    if any(isinstance(v, str) and _nul_in(v) for v in (request.view_args or {}).values()):
        abort(404)
    pairs = list(request.args.items(multi=True))
    if any(_nul_in(name) or _nul_in(value) for name, value in pairs):
        request.args = ImmutableMultiDict(
            (name, value) for name, value in pairs if not (_nul_in(name) or _nul_in(value))
        )
    has_body = bool(request.content_length or request.mimetype)
    if has_body and request.method != "GET" and request.mimetype not in FORM_TYPES:
        abort(415)


def register(app: Flask) -> None:
    """Install the check for every request."""
    app.before_request(tidy_request)
