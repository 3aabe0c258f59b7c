"""Render every HTTP error in the site's layout, as a page or an htmx fragment."""

from flask import Flask, g, make_response, render_template, request
from limits.errors import StorageError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable

from .attempts import CountersUnavailable
from .htmx import is_partial, vary_on_htmx

MESSAGES = {
    400: ("Something was wrong with that request", "Go back, reload the page and try again."),
    403: ("You cannot open this page", "Your account does not have permission to see it."),
    404: ("Page not found", "If you typed the web address, check it is correct."),
    405: ("That action is not allowed here", "Go back and use the page's own buttons."),
    413: ("That file is too large", "Go back and choose a smaller file."),
    415: ("Something was wrong with that request", "Go back and use the page's own form."),
    429: ("Too many attempts", "Wait a few minutes, then try again."),
    503: ("Sorry, the service is unavailable", "Try again in a few minutes."),
    500: (
        "Sorry, there is a problem with the service",
        "Try again later. Nothing you saved has been lost.",
    ),
}


#: The limits' counters are down (portal/web/attempts.py): what they guard waits a minute.
PAUSED_SIGN_IN = ("Signing in is paused for a moment", "Try again in a minute.")
PAUSED = (
    "Sorry, this is paused for a moment",
    "Try again in a minute. Nothing you saved has been lost.",
)
#: The database cannot be reached (restarting, failing over): the request's change rolled back.
DATABASE_DOWN = (
    "The service is having a problem",
    "Try again in a few minutes. If you were saving a change, check whether it was saved "
    "before you make it again.",
)
DATABASE_RETRY_AFTER = 60


class DatabaseUnavailable(ServiceUnavailable):
    """A 503: the database cannot be reached, or dropped the connection mid-request."""

    def __init__(self) -> None:
        super().__init__(retry_after=DATABASE_RETRY_AFTER)


def _words(error: HTTPException, code: int) -> tuple[str, str]:
    if isinstance(error, CountersUnavailable):
        return PAUSED_SIGN_IN if request.blueprint == "auth" else PAUSED
    if isinstance(error, DatabaseUnavailable):
        return DATABASE_DOWN
    return MESSAGES.get(code, (error.name, ""))


def render_error(error: HTTPException):
    """Return the error page (or its fragment for htmx) with the error's status."""
    code = error.code or 500
    title, message = _words(error, code)
    template = "errors/_error.html" if is_partial() else "errors/error.html"
    body = render_template(template, code=code, title=title, message=message)
    response = make_response(body, code)
    if error.code == 405 and hasattr(error, "valid_methods") and error.valid_methods:
        response.headers["Allow"] = ", ".join(error.valid_methods)
    retry_after = getattr(error, "retry_after", None)
    if error.code in (429, 503) and retry_after:
        response.headers["Retry-After"] = str(retry_after)
    if error.code == 503:
        response.headers["Cache-Control"] = "no-store"  # a moment's answer, never kept
    return vary_on_htmx(response)


def _unexpected(error: Exception):
    if isinstance(error, HTTPException):
        return render_error(error)
    from flask import current_app

    from ..extensions import db

    db.session.rollback()  # the error page must not trip over a failed transaction
    current_app.logger.exception("Unhandled exception")
    return render_error(InternalServerError())


def _counters_down(error: StorageError):
    """Flask-Limiter could not reach its storage: refuse what it limits (fail closed)."""
    from flask import current_app

    from ..extensions import db

    db.session.rollback()
    current_app.logger.error("Rate-limit storage unavailable: %s", error.storage_error)
    return render_error(CountersUnavailable())


def database_unavailable(error: Exception) -> bool:
    """Whether `error` says the database cannot be reached (down, restarting, the connection
    dropped), rather than that a statement was wrong: only then is the answer a 503."""
    if isinstance(error, PoolTimeout):  # every connection busy for the pool's whole timeout
        return True
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:  # SQLAlchemy saw the connection die under the request
        return True
    if not isinstance(error, OperationalError):  # programming or data errors stay 500s
        return False
    if type(error.orig).__module__ == "sqlite3":  # SQLite says "no such table" the same way
        return str(error.orig).startswith(_SQLITE_UNAVAILABLE)
    return True  # the server's OperationalError: connection refused or lost, shutting down


_SQLITE_UNAVAILABLE = (
    "database is locked",
    "database table is locked",
    "disk I/O error",
    "unable to open database file",
)


def _database_error(error: Exception):
    if not database_unavailable(error):
        return _unexpected(error)
    from flask import current_app

    from ..extensions import db, login_manager

    try:
        db.session.rollback()  # nothing of the request's transaction is kept
    except Exception:  # noqa: BLE001 - a dead connection may refuse even that
        current_app.logger.warning("Rollback after losing the database failed", exc_info=True)
    orig = getattr(error, "orig", None) or error  # its first line: never the SQL's parameters
    current_app.logger.error(
        "Database unavailable (%s): %s",
        type(orig).__name__,
        (str(orig).strip().splitlines() or [""])[0],
    )
    # Who is signed in is in the database too: the page is drawn as for a visitor rather
    # than asking it again (the session cookie is untouched, so nobody is signed out).
    g._login_user = login_manager.anonymous_user()  # Flask-Login's own record of it
    return render_error(DatabaseUnavailable())


def _release_session(_error: BaseException | None) -> None:
    """End the request's database session before Flask-SQLAlchemy's own teardown does.

    A connection that died after the answer was made (PostgreSQL restarting) makes that
    session's closing rollback fail, which would turn a finished answer into the server's
    500. The answer stands: its transaction committed, or rolled back whole with the
    connection. The failure invalidated the connection, so the second closing succeeds.
    """
    from flask import current_app

    from ..extensions import db

    try:
        db.session.remove()
    except DBAPIError as failure:
        if not database_unavailable(failure):
            raise
        current_app.logger.warning("Database connection lost after the answer was made")
        db.session.remove()


def register(app: Flask) -> None:
    """Install handlers for HTTP errors and unexpected exceptions."""
    # Teardowns run last-registered first: this one before Flask-SQLAlchemy's.
    app.teardown_appcontext(_release_session)
    app.register_error_handler(HTTPException, render_error)
    app.register_error_handler(StorageError, _counters_down)
    app.register_error_handler(DBAPIError, _database_error)
    app.register_error_handler(PoolTimeout, _database_error)
    app.register_error_handler(Exception, _unexpected)
