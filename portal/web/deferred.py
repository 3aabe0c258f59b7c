"""Run work once the response has gone, so nothing it does shows in the reply's timing.

Used where the time of a reply would tell an attacker something: a reset link for a known
address means a token, an audit row and an email; an unknown address means none of those.
The work runs in the same worker after the last byte is sent (WSGI's close()), in a bare
request context from the same client address (url_for and the audit log work as in the
request), and a failure is logged: the reply has already gone.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import after_this_request, current_app, request

from ..extensions import db


def after_response(work: Callable[[], None]) -> None:
    """Run `work` after this request's response has been sent."""
    app = current_app._get_current_object()  # type: ignore[attr-defined] # the proxy's own
    address = request.remote_addr

    def run() -> None:
        with app.test_request_context(environ_base={"REMOTE_ADDR": address or ""}):
            try:
                work()
            except Exception:
                db.session.rollback()
                app.logger.exception("Work after the response failed")
            finally:
                db.session.remove()

    @after_this_request
    def attach(response):
        response.call_on_close(run)
        return response
