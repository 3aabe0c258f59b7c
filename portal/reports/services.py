"""The annual report's PDF: made by a job, kept per version of the report's data.

`data_version(year)` is a short digest of everything the report of a year shows, from a few
aggregate queries. A PDF is kept per (year, data_version) in `report_file`: asking again
while nothing has changed finds the same file; a change makes a new version, and a new file.

Asking (`ask_for`) writes the row with INSERT ... ON CONFLICT DO NOTHING on that pair, so
thirty people pressing "Make the PDF" at once write one row and queue one job; a failed row,
or one whose worker stopped (STALE_AFTER), is put back in the queue by one conditional
UPDATE, which one request alone wins. The job (`make_pdf`) claims its row with a conditional
UPDATE QUEUED -> RUNNING, so a second run of the same job does nothing; it records its
progress in short transactions of their own, and writes only while the row is still its own
(`attempts` unchanged), so a worker that was given up for dead cannot overwrite a newer run.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import Row, and_, exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import aliased

from ..core.live import is_live
from ..core.updates import changed_rows
from ..extensions import db
from ..jobs import enqueue, job
from ..models import (
    Adoption,
    CaseStudy,
    Force,
    ModerationEvent,
    ReportFile,
    ReportFileState,
    Revision,
    Theme,
    User,
    UserStatus,
    revision_partner,
    revision_theme,
    utcnow,
)
from . import annual, figures, pdf

log = logging.getLogger(__name__)

#: A row queued or being made for longer than this is taken to have lost its worker (a
#: worker stopped, a queue emptied): anyone may ask for it again. The longest PDF measured
#: (2,000 case studies) takes under two minutes.
STALE_AFTER = timedelta(minutes=15)
#: Bump when the code changes what the report shows for the same data: every PDF is then
#: made again. (Changes to its template and stylesheets are seen by themselves.)
FORMAT = 1
#: Progress recorded at each step, in per cent. Laying out the pages is most of the work.
DATA_LOADED, HTML_WRITTEN, LAID_OUT, STORED = 10, 25, 75, 100
#: The files whose changes change the PDF made from the same data.
LAYOUT_FILES = (
    "templates/base.html",
    "templates/reports/annual.html",
    "static/css/portal.css",
    "static/vendor/govuk-frontend/govuk-frontend.min.css",
)

QUEUED, RUNNING = ReportFileState.QUEUED, ReportFileState.RUNNING
DONE, FAILED = ReportFileState.DONE, ReportFileState.FAILED


class NoReport(LookupError):
    """The library has no report for this year (before its first publication, or to come)."""


class TooLong(ValueError):
    """More case studies than the server lays out in one PDF (pdf.MAX_CASE_STUDIES)."""


# The version of a year's data


def data_version(year: int) -> str:
    """Return a short digest of everything the report of `year` shows.

    A few aggregate queries: which revisions are live (their count, ids and last change),
    their forces, themes and partners; the adoptions of that practice; the year's moderation
    events; the names of forces and themes and the listed contacts (small tables read
    whole); and the report's own template and stylesheets. Any change to what the report
    would print changes it; the time of day does not.
    """
    in_year = and_(is_live(), figures.in_year(CaseStudy.first_published_at, year))
    parts: list[Any] = [FORMAT, _layout_digest(), current_app.config["BASE_URL"], year]
    parts.append(
        db.session.execute(
            select(
                func.count(),
                func.sum(Revision.id),
                func.max(Revision.updated_at),
                func.sum(CaseStudy.force_id),
            )
            .select_from(Revision)
            .join(Revision.case_study)
            .where(in_year)
        ).one()
    )
    for link, column in (
        (revision_theme, revision_theme.c.theme_id),
        (revision_partner, revision_partner.c.partner_id),
    ):
        parts.append(
            db.session.execute(
                select(func.count(), func.sum(column))
                .select_from(link)
                .join(Revision, Revision.id == link.c.revision_id)
                .join(Revision.case_study)
                .where(in_year)
            ).one()
        )
    parts.append(
        db.session.execute(
            select(
                func.count(),
                func.sum(Adoption.id),
                func.max(Adoption.updated_at),
                func.sum(Adoption.force_id),
            )
            .select_from(Adoption)
            .join(Adoption.case_study)
            .join(Revision, Revision.case_study_id == CaseStudy.id)
            .where(in_year)
        ).one()
    )
    parts.append(
        db.session.execute(
            select(func.count(), func.sum(ModerationEvent.id), func.max(ModerationEvent.id)).where(
                figures.in_year(ModerationEvent.at, year)
            )
        ).one()
    )
    parts.append(
        db.session.execute(select(Force.id, Force.name, Force.slug).order_by(Force.id)).all()
    )
    parts.append(
        db.session.execute(
            select(Theme.id, Theme.name, Theme.slug, Theme.position).order_by(Theme.id)
        ).all()
    )
    parts.append(
        db.session.execute(
            select(User.id, User.force_id, User.name, User.contact_role, User.email)
            .where(User.listed_as_contact.is_(True), User.status == UserStatus.ACTIVE)
            .order_by(User.id)
        ).all()
    )
    return hashlib.sha256(repr(_plain(parts)).encode()).hexdigest()[:20]


def _plain(value: Any) -> Any:
    """Rows and lists as tuples of text: the same digest whatever types the driver returns."""
    if isinstance(value, list | tuple | Row):
        return tuple(_plain(item) for item in value)
    return str(value)


def _layout_digest() -> str:
    root = Path(current_app.root_path).parent
    return _digest_of_files(tuple(root / name for name in LAYOUT_FILES))


@functools.cache
def _digest_of_files(paths: tuple[Path, ...]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes() if path.is_file() else b"")
    return digest.hexdigest()[:12]


# Asking for a PDF


def file_of(year: int, version: str) -> ReportFile | None:
    """Return the file of the year's report for this version of its data, if asked for."""
    return db.session.scalar(
        select(ReportFile).where(ReportFile.year == year, ReportFile.data_version == version)
    )


def find(year: int, file_id: int) -> ReportFile | None:
    """Return the file `file_id` if it is one of the year's, else None."""
    found = db.session.get(ReportFile, file_id)
    return found if found is not None and found.year == year else None


def stopped(file: ReportFile, now: datetime | None = None) -> bool:
    """Return True when a queued or running file has waited so long its worker must be gone."""
    cutoff = (now or utcnow()) - STALE_AFTER
    if file.state == QUEUED:
        return file.requested_at < cutoff
    if file.state == RUNNING:
        return file.started_at is None or file.started_at < cutoff
    return False


def may_ask_again(file: ReportFile) -> bool:
    """Return True when asking for this file queues it again (it failed, or its worker left)."""
    return file.state == FAILED or stopped(file)


@dataclass(frozen=True)
class Asked:
    file: ReportFile
    queued: bool  # True when this request queued the job (nobody else's was on its way)


def ask_for(year: int) -> Asked:
    """Find or queue the PDF of the year's report as its data stands now.

    A file already made, queued or being made is returned as it is; a new version of the
    data gets a new row; a failed or abandoned row is queued again. Only the request that
    wrote the row (or put it back) queues the job, after its commit.
    """
    if year not in annual.years():
        raise NoReport(year)
    total = figures.total_live(year)
    if total > pdf.MAX_CASE_STUDIES:
        raise TooLong(total)
    version = data_version(year)
    now = utcnow()
    inserted = _insert_queued(year, version, now)
    file = file_of(year, version)
    assert file is not None  # written by this request or by the one it lost to
    queued = inserted or _queue_again(file.id, now)
    db.session.commit()
    if queued:
        file = _enqueue(file.id)
    return Asked(file, queued)


def _insert_queued(year: int, version: str, now: datetime) -> bool:
    insert = sqlite_insert if db.session.get_bind().dialect.name == "sqlite" else postgresql_insert
    statement = (
        insert(ReportFile)
        .values(
            year=year,
            data_version=version,
            state=QUEUED,
            progress=0,
            requested_at=now,
            error="",
            attempts=0,
            pages=0,
            size=0,
        )
        .on_conflict_do_nothing(index_elements=["year", "data_version"])
        .returning(ReportFile.id)  # a row only when this request wrote it
    )
    return db.session.execute(statement).scalar() is not None


def _queue_again(file_id: int, now: datetime) -> bool:
    cutoff = now - STALE_AFTER
    return (
        changed_rows(
            db.session.execute(
                update(ReportFile)
                .where(
                    ReportFile.id == file_id,
                    or_(
                        ReportFile.state == FAILED,
                        and_(ReportFile.state == QUEUED, ReportFile.requested_at < cutoff),
                        and_(
                            ReportFile.state == RUNNING,
                            or_(ReportFile.started_at.is_(None), ReportFile.started_at < cutoff),
                        ),
                    ),
                )
                .values(
                    state=QUEUED,
                    progress=0,
                    requested_at=now,
                    started_at=None,
                    finished_at=None,
                    error="",
                )
                .execution_options(synchronize_session=False)
            )
        )
        == 1
    )


def _enqueue(file_id: int) -> ReportFile:
    try:
        enqueue("report_pdf", file_id)
    except Exception:  # noqa: BLE001 - the row says so, and the button offers another try
        log.exception("the job queue could not be reached to make report file %s", file_id)
        db.session.execute(
            update(ReportFile)
            .where(ReportFile.id == file_id, ReportFile.state == QUEUED)
            .values(
                state=FAILED,
                finished_at=utcnow(),
                error="The server's job queue could not be reached. Try again in a few minutes.",
            )
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
    file = db.session.get(ReportFile, file_id, populate_existing=True)
    assert file is not None
    return file


@dataclass(frozen=True)
class Status:
    """Where a file stands, as its page says it."""

    file: ReportFile
    state: str  # queued, running, done, failed, or stopped (its worker is gone)
    outdated: bool  # made, or tried, for data that has changed since

    @property
    def waiting(self) -> bool:
        """True while a job is on its way: the page keeps asking."""
        return self.state in ("queued", "running")

    @property
    def token(self) -> str:
        """What the page shows, in a word: the same token, nothing new to show."""
        return f"{self.state}-{self.file.progress}-{int(self.outdated)}"


def status_of(file: ReportFile) -> Status:
    """Return where the file stands (whether its data has changed since, once it is over)."""
    state = "stopped" if stopped(file) else file.state.value
    over = state in ("done", "failed", "stopped")
    outdated = over and file.data_version != data_version(file.year)
    return Status(file, state, outdated)


@dataclass(frozen=True)
class Offer:
    """What the report's page offers for its PDF as the data stands now."""

    kind: str  # make, wait (queued or being made: follow it), download, or too_long
    file: ReportFile | None = None
    case_studies: int = 0

    @property
    def limit(self) -> int:
        return pdf.MAX_CASE_STUDIES


def offer(year: int, case_studies: int, version: str | None = None) -> Offer:
    """Return what the year's report page offers: to make, follow or download its PDF.

    `version` is the year's `data_version`, when the caller has it already.
    """
    if case_studies > pdf.MAX_CASE_STUDIES:
        return Offer("too_long", case_studies=case_studies)
    file = file_of(year, version or data_version(year))
    if file is None or may_ask_again(file):
        return Offer("make", case_studies=case_studies)
    kind = "download" if file.state == DONE else "wait"
    return Offer(kind, file, case_studies)


# The job


@dataclass(frozen=True)
class Run:
    """One claimed run of a file's job: it writes only while the row is still its own."""

    file_id: int
    year: int
    attempt: int


class Superseded(Exception):
    """The row is no longer this run's: it was given up for dead and queued again."""


@job("report_pdf")
def make_pdf(file_id: int) -> None:
    """Make the PDF of a queued report file; a file not queued (any more) is left alone."""
    run = _claim(file_id)
    if run is None:
        return
    try:
        _make(run)
    except Superseded:
        db.session.rollback()
        log.warning("report file %s was taken over by another run; this one stops", file_id)
    except Exception as error:  # noqa: BLE001 - every failure is the row's, in words
        db.session.rollback()
        log.exception("the PDF of the %s report (file %s) could not be made", run.year, file_id)
        _settle(run, state=FAILED, error=reason(error, run.year))
    finally:
        pdf.give_memory_back()


#: While one PDF is being made, another waits this long before it asks again.
WAIT_FOR_ANOTHER = timedelta(seconds=20)


def _claim(file_id: int) -> Run | None:
    # One PDF at a time across the portal: making one takes a worker's thread for minutes,
    # and the mail (a password reset) must always find a thread free.
    other = aliased(ReportFile)
    now = utcnow()
    another_running = exists().where(
        other.id != file_id, other.state == RUNNING, other.started_at > now - STALE_AFTER
    )
    claimed = changed_rows(
        db.session.execute(
            update(ReportFile)
            .where(ReportFile.id == file_id, ReportFile.state == QUEUED, ~another_running)
            .values(
                state=RUNNING,
                attempts=ReportFile.attempts + 1,
                started_at=utcnow(),
                progress=0,
                error="",
            )
            .execution_options(synchronize_session=False)
        )
    )
    db.session.commit()
    if claimed != 1:
        still_queued = db.session.scalar(
            select(ReportFile.id).where(ReportFile.id == file_id, ReportFile.state == QUEUED)
        )
        db.session.commit()
        if still_queued is not None:  # another is being made: wait for a turn
            enqueue("report_pdf", file_id, eta=now + WAIT_FOR_ANOTHER)
        return None
    year, attempt = db.session.execute(
        select(ReportFile.year, ReportFile.attempts).where(ReportFile.id == file_id)
    ).one()
    db.session.commit()
    return Run(file_id, year, attempt)


def _make(run: Run) -> None:
    if not pdf.available():
        raise PdfUnavailable
    config = current_app.config
    base_url = str(config["BASE_URL"]) + "/"
    # Links are built outside any web request: a bare request context lets url_for work.
    with current_app.test_request_context("/", base_url=base_url):
        if run.year not in annual.years():
            raise NoReport(run.year)
        report = annual.contents(run.year)
        if len(report["revisions"]) > pdf.MAX_CASE_STUDIES:
            raise TooLong(len(report["revisions"]))
        _progress(run, DATA_LOADED)
        html = annual.page(report)
    del report
    db.session.rollback()  # no transaction stays open while the pages are laid out
    _progress(run, HTML_WRITTEN)
    document = pdf.layout(html, base_url, Path(current_app.static_folder or "static"))
    del html
    _progress(run, LAID_OUT)
    pages = len(document.pages)
    data = pdf.write(document)
    del document
    _settle(run, state=DONE, pdf=data, size=len(data), pages=pages, progress=STORED)


class PdfUnavailable(RuntimeError):
    """WeasyPrint cannot load the Pango library it draws text with."""


def _progress(run: Run, percent: int) -> None:
    # A transaction of its own, on its own connection: the run's session keeps what it read.
    with db.engine.begin() as connection:
        result = connection.execute(_ours(run).values(progress=percent))
    if changed_rows(result) != 1:
        raise Superseded(run.file_id)


def _settle(run: Run, *, state: ReportFileState, **values: Any) -> None:
    changed = changed_rows(
        db.session.execute(
            _ours(run)
            .values(state=state, finished_at=utcnow(), **values)
            .execution_options(synchronize_session=False)
        )
    )
    db.session.commit()
    if changed != 1:
        log.warning(
            "report file %s was taken over by another run; its result is dropped", run.file_id
        )


def _ours(run: Run):
    return update(ReportFile).where(
        ReportFile.id == run.file_id,
        ReportFile.state == RUNNING,
        ReportFile.attempts == run.attempt,
    )


def reason(error: Exception, year: int) -> str:
    """Say in plain English why a PDF could not be made (the log has the details)."""
    if isinstance(error, PdfUnavailable):
        return (
            "The server that makes PDFs is missing the Pango library it draws text with. "
            "Tell the portal's admins. Until then, use Print and choose Save as PDF."
        )
    if isinstance(error, NoReport):
        return f"The library has no report for {year} any more."
    if isinstance(error, TooLong):
        return (
            f"The {year} report has {error.args[0]:,} case studies, more than the "
            f"{pdf.MAX_CASE_STUDIES:,} the server can put in one PDF. "
            "Use Print and choose Save as PDF instead."
        )
    if isinstance(error, MemoryError):
        return (
            "The server ran out of memory while laying out the pages. Try again later. "
            "If it happens again, tell the portal's admins."
        )
    return (
        "Something went wrong on the server while making the PDF. Try again. "
        "If it happens again, tell the portal's admins: the server's log says what happened."
    )
