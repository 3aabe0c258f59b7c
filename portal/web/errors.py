"""Render every HTTP error in the site's layout, as a page or an htmx fragment."""

from flask import Flask, make_response, render_template
from werkzeug.exceptions import HTTPException, InternalServerError

from .htmx import is_partial, vary_on_htmx

MESSAGES = {
    400: ("Something was wrong with that request", "Go back, reload the page and try again."),
    403: ("You cannot open this page", "Your account does not have permission to see it."),
    404: ("Page not found", "If you typed the web address, check it is correct."),
    405: ("That action is not allowed here", "Go back and use the page's own buttons."),
    413: ("That file is too large", "Go back and choose a smaller file."),
    415: ("Something was wrong with that request", "Go back and use the page's own form."),
    429: ("Too many attempts", "Wait a few minutes, then try again."),
    500: (
        "Sorry, there is a problem with the service",
        "Try again later. Nothing you saved has been lost.",
    ),
}


def render_error(error: HTTPException):
    """Return the error page (or its fragment for htmx) with the error's status."""
    code = error.code or 500
    title, message = MESSAGES.get(code, (error.name, ""))
    template = "errors/_error.html" if is_partial() else "errors/error.html"
    body = render_template(template, code=code, title=title, message=message)
    response = make_response(body, code)
    if error.code == 405 and hasattr(error, "valid_methods") and error.valid_methods:
        response.headers["Allow"] = ", ".join(error.valid_methods)
    retry_after = getattr(error, "retry_after", None)
    if error.code == 429 and retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return vary_on_htmx(response)


def _unexpected(error: Exception):
    if isinstance(error, HTTPException):
        return render_error(error)
    from flask import current_app

    from ..extensions import db

    db.session.rollback()  # the error page must not trip over a failed transaction
    current_app.logger.exception("Unhandled exception")
    return render_error(InternalServerError())


def register(app: Flask) -> None:
    """Install handlers for HTTP errors and unexpected exceptions."""
    app.register_error_handler(HTTPException, render_error)
    app.register_error_handler(Exception, _unexpected)
