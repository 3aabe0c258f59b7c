"""Record library searches for the admins' search insights, and read them back.

What is kept of a search: its words, normalised (NFKC, lower case, spaces collapsed, control,
format and line-breaking characters removed as `core.text` cleans them, at most 200
characters), how many results it found, whether one of them was opened, and the hour it was
made. Never who searched, from which session or address, nor the minute. A search that looks
like an email address or holds a phone number (7 digits or more, whatever spaces, dashes,
dots or brackets are between them, in any script) is not kept at all.

The library calls `record` for each search and puts the token it returns on each result
link (`?search=<token>`); the case study page hands it to `mark_opened`. Neither ever
breaks the page that calls it: a failure is rolled back and logged (without the words).

Rows older than PORTAL_SEARCH_INSIGHTS_DAYS are deleted with one indexed DELETE: while
recording, at most once an hour per process, and each time the insights page is shown.
"""

from __future__ import annotations

import re
import threading
import time
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, has_request_context, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import ColumnElement, case, delete, func, select, update

from ..core.text import MAX_QUERY, clean_query, one_line
from ..core.updates import changed_rows
from ..extensions import db
from ..models import SearchLog, Synonym, utcnow
from ..web import attempts
from ..web.people import visitor

SALT = "portal.search-insights"
#: A result link works for a day: long enough to read a page of results, and no longer.
TOKEN_MAX_AGE = 24 * 3600
PENDING_SALT = "portal.search-insights.pending"
# Searches one person (or address) can add to the insights: a flood is not a trend.
RECORDED = attempts.AttemptLimit("search-insights", 30, 3600)
#: Seconds between the deletions of expired rows that recording makes in one process.
PRUNE_EVERY = 3600
PERIODS = (7, 30, 90)
DEFAULT_PERIOD = 30
TOP = 20
#: Longer text is no search anybody typed (the library keeps 200 characters): not kept, and
#: not read either, so no cost grows with it and nothing is judged on part of it.
_READ_AT_MOST = 5 * MAX_QUERY
_LARGEST_ID = 2**31 - 1  # ids and counts are 32-bit integers on PostgreSQL
#: Joiners that some scripts and emoji need inside a word; every other format character
#: (zero-width spaces, bidirectional controls, soft hyphens, BOM) is removed.
_JOINERS = frozenset("\u200c\u200d")
#: What may stand between the digits of a phone number: spaces, dashes, dots, slashes,
#: brackets, a plus; any Unicode space or dash too (NFKC has folded the full-width ones).
_EMAIL_SHAPES = (
    re.compile(r"[^\s@]\s*@\s*[^\s@]"),  # name@domain, name @ domain, with or without a dot
    re.compile(r"\w\s*[\[({<]\s*(?:at|@)\s*[\])}>]\s*\w"),  # name [at] domain, name(at)domain
    re.compile(r"\w\s+at\s+[\w.-]+\s+dot\s+\w"),  # name at domain dot uk
)
#: The shape admin.services.add_synonym accepts for a short form (it checks it again).
_TERM = re.compile(r"[a-z0-9]{2,20}")

_PRUNE_LOCK = threading.Lock()


# What is kept of a search


def normalise(text: str) -> str:
    """Return the search as it is stored: folded, lower case, one line, at most 200 chars."""
    return clean_query(_folded(text[:_READ_AT_MOST])).strip()


def _folded(text: str) -> str:
    """NFKC, lower case, format characters removed, breaks as spaces; not yet cut to length."""
    folded = unicodedata.normalize("NFKC", text).lower()
    visible = "".join(ch for ch in folded if ch in _JOINERS or unicodedata.category(ch) != "Cf")
    return one_line(visible)


_FILLERS = frozenset("\u115f\u1160\u3164\uffa0")  # letters that show as blanks
_AT_WORD = re.compile(r"(?:^|[^a-z])at[^a-z]+[a-z0-9-]+\.[a-z]{2,}")  # jane at kent.police.uk


def looks_like_email(text: str) -> bool:
    """Return True when any part of `text` has an email address's shape."""
    text = text.replace("%40", "@").replace("&#64;", "@")
    return any(shape.search(text) for shape in _EMAIL_SHAPES) or bool(_AT_WORD.search(text.lower()))


def looks_like_phone(text: str) -> bool:
    """Return True when `text` holds 7 digits or more with only separators between them."""
    digits = 0
    for ch in text:
        if ch.isdecimal():
            digits += 1
            if digits >= 7:
                return True
        elif ch.isalpha() and ch not in _FILLERS:
            digits = 0  # a word between digits; anything else (marks, joiners, commas,
            # blank fillers) may be dressing up one number
    return False


def keepable(text: str) -> str | None:
    """Return what would be stored of a search, or None when nothing may be (empty, personal).

    The checks read the whole folded text, before it is cut to 200 characters, so the end of
    a phone number is never kept by itself.
    """
    if not isinstance(text, str) or len(text) > _READ_AT_MOST:
        return None
    folded = _folded(text)
    if looks_like_email(folded) or looks_like_phone(folded):
        return None
    query = clean_query(folded).strip()
    return query or None


def retention_days() -> int:
    return int(current_app.config.get("SEARCH_INSIGHTS_DAYS", 90))


def _this_hour() -> datetime:
    return utcnow().replace(minute=0, second=0, microsecond=0)


# The library's calls


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def _log_failure(what: str, error: BaseException) -> None:
    # The class of the error only: a database error's message quotes the statement's
    # parameters, which are the words searched for.
    current_app.logger.error("search insights: could not %s (%s)", what, type(error).__name__)


def _within_limit() -> bool:
    """Take a slot for one more kept search by this person; False when they have had their
    share this hour (or the counters are down): the search still answers, uncounted."""
    if not has_request_context():  # a command, not a person
        return True
    person = visitor()
    key = f"user-{person.id}" if person else f"address-{request.remote_addr}"
    try:
        attempts.take((RECORDED, key))
    except Exception:  # noqa: BLE001 - too many, or no counters: just not counted
        return False
    return True


def pending(text: str, results: int) -> str | None:
    """A token for the result links of a search finished by a pause, not yet kept: it is
    kept (as opened) only if one of its results is opened. So words typed on the way to
    others (the start of a name) are never kept."""
    if retention_days() <= 0 or keepable(text) is None:
        return None
    count = min(max(int(results), 0), _LARGEST_ID)
    serializer = URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=PENDING_SALT)
    return serializer.dumps([text, count])


def _pending_of(token: Any) -> tuple[str, int] | None:
    if not isinstance(token, str) or not token or len(token) > 2000:
        return None
    serializer = URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=PENDING_SALT)
    try:
        found = serializer.loads(token, max_age=TOKEN_MAX_AGE)
    except (BadSignature, ValueError):
        return None
    if not (isinstance(found, list) and len(found) == 2):
        return None
    text, count = found
    if not isinstance(text, str) or type(count) is not int:
        return None
    return text, count


def record(text: str, results: int, *, opened: bool = False) -> str | None:
    """Keep a search; return a token for its result links, or None if nothing was kept.

    Nothing is kept when recording is off (PORTAL_SEARCH_INSIGHTS_DAYS=0), the search is
    empty, or it looks like an email address or a phone number. A failing write is rolled
    back and logged: the search itself must never fail because of this.
    """
    try:
        if retention_days() <= 0:
            return None
        query = keepable(text)
        if query is None or not _within_limit():
            return None
        count = min(max(int(results), 0), _LARGEST_ID)
        if _prune_is_due():
            _delete_expired()
        row = SearchLog(created_at=_this_hour(), query_text=query, results=count, opened=opened)
        db.session.add(row)
        db.session.flush()
        row_id = row.id
        db.session.commit()
    except Exception as error:  # noqa: BLE001 - a search must never break because of this
        db.session.rollback()
        _log_failure("record a search", error)
        return None
    return _serializer().dumps(row_id)


def _row_of(token: Any) -> int | None:
    """Return the row a genuine, current token was made for, or None."""
    if not isinstance(token, str) or not token or len(token) > 200:
        return None
    try:
        row_id = _serializer().loads(token, max_age=TOKEN_MAX_AGE)
    except (BadSignature, ValueError):
        return None
    if type(row_id) is not int or not 1 <= row_id <= _LARGEST_ID:
        return None
    return row_id


def mark_opened(token: str | None) -> None:
    """Note that a result of the search behind `token` was opened (once: a conditional UPDATE).

    A missing, forged, expired or used token, or a row already deleted, changes nothing and
    raises nothing.
    """
    row_id = _row_of(token)
    if row_id is None:
        waiting = _pending_of(token)
        if waiting is not None:  # a search finished by a pause: kept now that it helped
            record(*waiting, opened=True)
        return
    try:
        db.session.execute(
            update(SearchLog)
            .where(SearchLog.id == row_id, SearchLog.opened.is_(False))
            .values(opened=True)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
    except Exception as error:  # noqa: BLE001 - the case study page must never break for this
        db.session.rollback()
        _log_failure("mark a search as opened", error)


# Retention


def _prune_is_due() -> bool:
    """Claim this process's hourly deletion of expired rows (True: do it now)."""
    state = current_app.extensions.setdefault("portal.insights", {})
    now = time.monotonic()
    with _PRUNE_LOCK:
        last = state.get("pruned_at")
        if last is not None and now - last < PRUNE_EVERY:
            return False
        state["pruned_at"] = now
        return True


def _expired() -> ColumnElement[bool]:
    return SearchLog.created_at < utcnow() - timedelta(days=retention_days())


def expired_count() -> int:
    """How many rows the next deletion would take (`portal retention --dry-run`)."""
    return db.session.scalar(select(func.count()).select_from(SearchLog).where(_expired())) or 0


def _delete_expired() -> int:
    """Delete, in the caller's transaction, every row older than the retention period."""
    return changed_rows(
        db.session.execute(
            delete(SearchLog).where(_expired()).execution_options(synchronize_session=False)
        )
    )


def delete_expired() -> int:
    """Delete every row older than the retention period (one indexed DELETE); return how many."""
    try:
        deleted = _delete_expired()
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return deleted


# The admins' page


@dataclass(frozen=True)
class Row:
    """One normalised search in a period: how often it was made, how often a result opened."""

    query: str
    searches: int
    opened: int


@dataclass(frozen=True)
class Insights:
    days: int
    searches: int
    without_results: int
    opened: int
    frequent: list[Row]
    without_results_top: list[Row]
    unopened: list[Row]


def period(value: Any) -> int:
    """Return a period the page offers: `value` if it is one, else the default."""
    return value if value in PERIODS else DEFAULT_PERIOD


def insights(days: int) -> Insights:
    """Return the counts of the last `days` days, each list the top 20, most searched first."""
    since = utcnow() - timedelta(days=days)
    in_period = SearchLog.created_at >= since
    searches = func.count(SearchLog.id).label("searches")
    opened = func.coalesce(func.sum(case((SearchLog.opened, 1), else_=0)), 0).label("opened")

    def top(*where: Any, having: Any = None) -> list[Row]:
        query = (
            select(SearchLog.query_text, searches, opened)
            .where(in_period, *where)
            .group_by(SearchLog.query_text)
            .order_by(searches.desc(), SearchLog.query_text)
            .limit(TOP)
        )
        if having is not None:
            query = query.having(having)
        return [Row(q, int(n), int(o)) for q, n, o in db.session.execute(query)]

    total, empty, clicked = db.session.execute(
        select(
            func.count(SearchLog.id),
            func.coalesce(func.sum(case((SearchLog.results == 0, 1), else_=0)), 0),
            func.coalesce(func.sum(case((SearchLog.opened, 1), else_=0)), 0),
        ).where(in_period)
    ).one()
    return Insights(
        days=days,
        searches=int(total),
        without_results=int(empty),
        opened=int(clicked),
        frequent=top(),
        without_results_top=top(SearchLog.results == 0),
        unopened=top(SearchLog.results > 0, having=opened == 0),
    )


def term_choices(query: str) -> list[str]:
    """Return the words of a search that could be a synonym's short form, in order, once each."""
    return list(dict.fromkeys(w for w in query.split() if _TERM.fullmatch(w)))


def existing_synonyms(terms: set[str]) -> dict[str, str]:
    """Return the synonyms already defined among `terms`: short form -> what it stands for."""
    if not terms:
        return {}
    found = db.session.execute(
        select(Synonym.term, Synonym.expansion).where(Synonym.term.in_(sorted(terms)))
    )
    return {term: expansion for term, expansion in found}
