"""The annual report's PDF as a job (issue 16).

Asked for from the report's page (a POST), made by the job queue (run here in this process
with `run_queued`, as `portal worker` runs it), followed on a page that htmx keeps up to
date, and downloaded once made. One file per year and version of the report's data: asking
again while nothing changed finds the same file, a change makes a new one; thirty people
pressing at once queue one job; a failure says why and may be tried again; a worker that
stopped leaves a file anyone may ask for again.
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
import requests
from sqlalchemy import select, update

from portal.extensions import db
from portal.jobs import enqueue, pending, run_queued
from portal.models import (
    Adoption,
    AdoptionKind,
    CaseStudy,
    Force,
    ReportFile,
    ReportFileState,
    Theme,
    User,
    utcnow,
)
from portal.reports import pdf, services

from ..conftest import csrf_from, served, signed_in
from ..records import case_study_line
from ..writing import complete, post_case_study
from .test_reports_polish import pdf_text

pytestmark = pytest.mark.skipif(not pdf.available(), reason="WeasyPrint can't load Pango")

YEAR = utcnow().year
TITLES = ("Rugby kit for allies", "Walk and talk for Movember")


@pytest.fixture
def library(published) -> list[int]:
    """Two case studies first published this year."""
    return published(
        case_study_line(title=TITLES[0]),
        case_study_line(
            title=TITLES[1], force="Kent Police", themes=["Men's health and wellbeing"]
        ),
    )


def token(client) -> str:
    """A CSRF token of the client's session (every signed-in page has one)."""
    return csrf_from(client.get("/account").get_data(as_text=True))


def ask(client, year: int = YEAR, **kwargs):
    """Press "Make the PDF" (or "Try again") for the year's report."""
    return client.post(f"/reports/annual/{year}/pdf", data={"csrf_token": token(client)}, **kwargs)


def files(app) -> list[tuple]:
    """(id, year, state, progress, attempts) of every report file."""
    with app.app_context():
        return [
            tuple(row)
            for row in db.session.execute(
                select(
                    ReportFile.id,
                    ReportFile.year,
                    ReportFile.state,
                    ReportFile.progress,
                    ReportFile.attempts,
                ).order_by(ReportFile.id)
            )
        ]


def status_of(client, location: str, **headers) -> str:
    response = client.get(location, headers=headers)
    assert response.status_code == 200, response.status_code
    assert "HX-Request" in response.headers.get("Vary", "")
    return response.get_data(as_text=True)


def live_region(page: str) -> str:
    """The inside of the status's live region (what screen readers hear as it changes)."""
    found = re.search(
        r'<div id="pdf-status" class="portal-pdf-status" aria-live="polite">(.*?)</div>\s*'
        r'<div id="pdf-poll"',
        page,
        re.S,
    )
    assert found, page
    return found.group(1)


def download_link(page: str) -> str:
    link = re.search(r'href="(/reports/annual/\d+/pdf/\d+\.pdf)"', page)
    assert link, page
    return link.group(1)


def version(app, year: int = YEAR) -> str:
    with app.app_context():
        return services.data_version(year)


# 1. The journey: ask, wait, download


def test_the_pdf_is_asked_for_made_by_a_job_and_downloaded(app, member, library):
    page = member.get(f"/reports/annual/{YEAR}").get_data(as_text=True)
    assert f'<form id="make-pdf" method="post" action="/reports/annual/{YEAR}/pdf">' in page
    assert re.search(r'<button type="submit" form="make-pdf"[^>]*>Make the PDF</button>', page)

    asked = ask(member)
    assert asked.status_code == 303
    assert re.fullmatch(rf"/reports/annual/{YEAR}/pdf/\d+", asked.location)
    assert pending(app) == 1
    ((file_id, year, state, progress, attempts),) = files(app)
    assert (year, state, progress, attempts) == (YEAR, ReportFileState.QUEUED, 0, 0)

    # Waiting: a live region saying so, a poller every 2 s, and a link for pages without JS.
    waiting = status_of(member, asked.location)
    assert "Waiting to start making the PDF." in live_region(waiting)
    assert 'hx-trigger="every 2s"' in waiting
    assert f'hx-get="/reports/annual/{YEAR}/pdf/{file_id}?seen=queued-0-0"' in waiting
    assert f'<a class="govuk-link" href="/reports/annual/{YEAR}/pdf/{file_id}">Check again</a>' in (
        waiting
    )
    # The poll of an unchanged state moves nothing; a poll of another state gets the news.
    unchanged = member.get(f"{asked.location}?seen=queued-0-0", headers={"HX-Request": "true"})
    assert unchanged.status_code == 204 and unchanged.data == b""
    assert "HX-Request" in unchanged.headers["Vary"]
    news = status_of(member, f"{asked.location}?seen=gone", **{"HX-Request": "true"})
    assert '<hx-partial hx-target="#pdf-status" hx-swap="innerHTML">' in news
    assert "<html" not in news

    assert run_queued(app) == 1
    ((_, _, state, progress, attempts),) = files(app)
    assert (state, progress, attempts) == (ReportFileState.DONE, 100, 1)

    # Ready: the poll gets the link and stops (the new poller has nothing to poll with).
    news = status_of(member, f"{asked.location}?seen=queued-0-0", **{"HX-Request": "true"})
    assert "The PDF is ready." in news and "hx-trigger" not in news
    assert re.search(r"Download the PDF<span[^>]*> of the \d+ report</span> \(\d+ pages?, ", news)
    done = status_of(member, asked.location)
    assert "hx-trigger" not in done and "Check again" not in done

    response = member.get(download_link(done))
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="heforshe-progress-report-{YEAR}-draft.pdf"'
    )
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert int(response.headers["Content-Length"]) == len(response.data)
    assert response.data.startswith(b"%PDF-") and response.data.rstrip().endswith(b"%%EOF")
    text = " ".join(pdf_text(response.data))
    assert f"HeForShe progress report {YEAR}" in text
    for title in TITLES:
        assert title in text
    with app.app_context():
        file = db.session.get(ReportFile, file_id)
        assert file.size == len(response.data) and file.pages >= 2
        assert file.data_version == services.data_version(YEAR)


def test_the_page_says_each_step_of_the_job_while_it_runs(app, member, library, monkeypatch):
    asked = ask(member)
    seen = []
    layout, write = pdf.layout, pdf.write

    def look(**headers):
        # From another thread, as a browser's request comes: not in the job's app context.
        with ThreadPoolExecutor(max_workers=1) as browser:
            seen.append(browser.submit(status_of, member, asked.location, **headers).result())

    def watched_layout(*args, **kwargs):
        look(**{"HX-Request": "true"})
        return layout(*args, **kwargs)

    def watched_write(*args, **kwargs):
        look()
        return write(*args, **kwargs)

    monkeypatch.setattr(pdf, "layout", watched_layout)
    monkeypatch.setattr(pdf, "write", watched_write)
    assert run_queued(app) == 1
    assert "Making the PDF: 25%" in seen[0]
    assert "?seen=running-25-0" in seen[0]
    assert "Making the PDF: 75%" in seen[1]
    assert "The PDF is ready." in status_of(member, asked.location)


# 2. One job for many people


def test_thirty_people_pressing_at_once_make_one_job(app, make_user, library):
    people = [make_user(email=f"person{n}@kent.police.uk") for n in range(30)]
    with served(app) as base:
        sessions = []
        for person in people:
            http = requests.Session()
            signed = http.post(
                base + "/auth/login",
                data={
                    "email": person.email,
                    "password": person.password,
                    "csrf_token": csrf_from(http.get(base + "/auth/login", timeout=30).text),
                },
                allow_redirects=False,
                timeout=30,
            )
            assert signed.status_code == 303
            sessions.append((http, csrf_from(http.get(base + "/account", timeout=30).text)))
        barrier = threading.Barrier(len(sessions))

        def press(session) -> requests.Response:
            http, csrf = session
            barrier.wait()
            return http.post(
                f"{base}/reports/annual/{YEAR}/pdf",
                data={"csrf_token": csrf},
                allow_redirects=False,
                timeout=120,
            )

        with ThreadPoolExecutor(max_workers=len(sessions)) as pool:
            answers = list(pool.map(press, sessions))
    assert [a.status_code for a in answers] == [303] * 30
    assert len({a.headers["Location"] for a in answers}) == 1
    assert len(files(app)) == 1
    assert pending(app) == 1
    assert run_queued(app) == 1
    assert files(app)[0][2] == ReportFileState.DONE


def test_asking_at_the_same_moment_queues_the_job_once(app, library):
    barrier = threading.Barrier(30)

    def ask_for(_):
        with app.app_context():
            barrier.wait()
            asked = services.ask_for(YEAR)
            answer = (asked.file.id, asked.queued)
            db.session.remove()
            return answer

    with ThreadPoolExecutor(max_workers=30) as pool:
        answers = list(pool.map(ask_for, range(30)))
    assert len({file_id for file_id, _ in answers}) == 1
    assert sum(queued for _, queued in answers) == 1
    assert pending(app) == 1


def test_running_the_same_job_twice_makes_the_pdf_once(app, member, library, monkeypatch):
    ask(member)
    ((file_id, *_),) = files(app)
    with app.app_context():
        enqueue("report_pdf", file_id)  # delivered twice, as a queue may
    layouts = []
    layout = pdf.layout
    monkeypatch.setattr(pdf, "layout", lambda *a, **k: layouts.append(1) or layout(*a, **k))
    assert run_queued(app) == 2
    assert len(layouts) == 1
    assert files(app) == [(file_id, YEAR, ReportFileState.DONE, 100, 1)]


# 3. The same data, the same file; new data, a new file


def test_the_same_data_gives_the_same_file_and_a_change_a_new_one(app, member, library, published):
    first = ask(member).location
    run_queued(app)
    made = download_link(status_of(member, first))
    # Asking again, with nothing changed, is the same file at once: no job.
    again = ask(member)
    assert again.location == first and pending(app) == 0
    page = member.get(f"/reports/annual/{YEAR}").get_data(as_text=True)
    assert "Make the PDF" not in page and made in page

    # What the report doesn't show changes nothing: a draft, a search.
    post_case_study(member, complete(app, title="Not yet published"), action="save")
    member.get("/library?q=rugby")
    assert made in member.get(f"/reports/annual/{YEAR}").get_data(as_text=True)

    # A new case study in the year makes a new version: a new file, with it in.
    published(case_study_line(title="Safer nights out for women"))
    page = member.get(f"/reports/annual/{YEAR}").get_data(as_text=True)
    assert "Make the PDF" in page and made not in page
    second = ask(member).location
    assert second != first and pending(app) == 1
    run_queued(app)
    newer = member.get(download_link(status_of(member, second)))
    assert "Safer nights out for women" in " ".join(pdf_text(newer.data))
    # The older file stays until the retention job's grace ends; its page says it is old.
    old = status_of(member, first)
    assert "The library has changed since this PDF was made" in old
    assert "Make a new PDF" in old
    assert member.get(made).status_code == 200


def test_the_data_version_follows_everything_the_report_shows(app, library, make_user):
    before = version(app)
    assert version(app) == before  # the same data, the same version, whenever it is asked
    with app.app_context():
        kent = db.session.scalar(select(Force).where(Force.name == "Kent Police"))
        ours = db.session.scalar(
            select(CaseStudy).where(CaseStudy.id == library[0])
        )  # Northamptonshire's
        db.session.add(Adoption(case_study_id=ours.id, force_id=kent.id, kind=AdoptionKind.ADOPTED))
        db.session.commit()
    adopted = version(app)
    assert adopted != before

    make_user(email="lead@kent.police.uk")
    assert version(app) == adopted  # an account that is not a listed contact
    with app.app_context():
        db.session.execute(
            update(User)
            .where(User.email == "lead@kent.police.uk")
            .values(listed_as_contact=True, contact_role="Force lead")
        )
        db.session.commit()
    listed = version(app)
    assert listed != adopted

    with app.app_context():
        db.session.execute(
            update(Theme)
            .where(Theme.name == "Men's health and wellbeing")
            .values(name="Men's health and care")
        )
        db.session.commit()
    renamed = version(app)
    assert renamed != listed

    with app.app_context():
        db.session.execute(
            update(CaseStudy).where(CaseStudy.id == library[1]).values(archived_at=utcnow())
        )
        db.session.commit()
    assert version(app) != renamed
    # Another year's report has its own version.
    assert version(app, YEAR - 1) != version(app)


# 4. Failures, and workers that stop


def test_a_failed_pdf_says_why_and_can_be_tried_again(app, member, library, monkeypatch, caplog):
    import weasyprint

    def out_of_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(weasyprint.HTML, "render", out_of_memory)
    location = ask(member).location
    assert run_queued(app) == 1
    ((file_id, _, state, _, attempts),) = files(app)
    assert (state, attempts) == (ReportFileState.FAILED, 1)
    assert "could not be made" in caplog.text  # the log says what happened, in full
    failed = status_of(member, location)
    live = live_region(failed)
    assert "The PDF could not be made." in live
    assert "The server ran out of memory while laying out the pages." in live
    assert re.search(r'<button type="submit" class="govuk-button"[^>]*>Try again</button>', live)
    assert "hx-trigger" not in failed
    assert "Make the PDF" in member.get(f"/reports/annual/{YEAR}").get_data(as_text=True)
    assert member.get(f"/reports/annual/{YEAR}/pdf/{file_id}.pdf").status_code == 404

    monkeypatch.undo()
    again = ask(member)
    assert again.location == location  # the same file, queued again
    assert files(app) == [(file_id, YEAR, ReportFileState.QUEUED, 0, 1)]
    assert run_queued(app) == 1
    assert files(app) == [(file_id, YEAR, ReportFileState.DONE, 100, 2)]
    assert "The PDF is ready." in status_of(member, location)


def test_a_pdf_whose_worker_stopped_can_be_asked_for_again(app, member, library):
    location = ask(member).location
    ((file_id, *_),) = files(app)
    with app.app_context():
        gone = services._claim(file_id)  # a worker took it, then stopped for good
        assert gone is not None
    assert "Making the PDF: 0%" in status_of(member, location)
    assert ask(member).location == location and pending(app) == 1  # still its job's
    with app.app_context():
        db.session.execute(
            update(ReportFile)
            .where(ReportFile.id == file_id)
            .values(started_at=utcnow() - services.STALE_AFTER - timedelta(seconds=1))
        )
        db.session.commit()
    stopped = status_of(member, location)
    assert "The server stopped while it was making it." in stopped
    assert "Try again" in stopped and "hx-trigger" not in stopped

    assert ask(member).location == location
    assert files(app) == [(file_id, YEAR, ReportFileState.QUEUED, 0, 1)]
    # The stopped worker wakes: the row is no longer its own.
    with app.app_context(), pytest.raises(services.Superseded):
        services._progress(gone, 50)
    assert run_queued(app) == 2  # the first delivery makes it; the second finds it made
    assert files(app) == [(file_id, YEAR, ReportFileState.DONE, 100, 2)]


def test_one_pdf_is_made_at_a_time_so_mail_always_finds_a_worker(app, member, library):
    ask(member)
    ((first, *_),) = files(app)
    with app.app_context():
        queued = ReportFile(year=YEAR - 1, data_version="other", state=ReportFileState.QUEUED)
        db.session.add(queued)
        db.session.commit()
        second = queued.id
        assert services._claim(first) is not None  # being made by a worker
        before = pending(app)
        assert services._claim(second) is None  # waits for its turn, still queued
        assert db.session.get(ReportFile, second).state == ReportFileState.QUEUED
        assert pending(app) == before + 1  # asked again in a moment (its eta 20 s on)
        db.session.execute(
            update(ReportFile).where(ReportFile.id == first).values(state=ReportFileState.DONE)
        )
        db.session.commit()
        assert services._claim(second) is not None  # its turn


def test_a_pdf_that_never_started_can_be_asked_for_again(app, member, library):
    location = ask(member).location
    with app.app_context():
        db.session.execute(
            update(ReportFile).values(
                requested_at=utcnow() - services.STALE_AFTER - timedelta(minutes=1)
            )
        )
        db.session.commit()
    waited = status_of(member, location)
    assert "It has waited more than 15 minutes to start" in waited and "Try again" in waited
    assert ask(member).location == location
    assert pending(app) == 2  # queued again: the claim lets one run only
    assert run_queued(app) == 2
    assert files(app)[0][2:] == (ReportFileState.DONE, 100, 1)


# 5. Who may, and what is refused


@pytest.mark.parametrize("public", [False, True])
def test_only_those_who_may_see_the_report_reach_its_pdf(app, member, library, make_user, public):
    location = ask(member).location
    run_queued(app)
    link = download_link(status_of(member, location))
    app.config["PUBLIC_LIBRARY"] = public
    anonymous = app.test_client()
    for path in (f"/reports/annual/{YEAR}", location, link):
        response = anonymous.get(path)
        assert response.status_code == 302 and "/auth/login" in response.location, path
    fragment = anonymous.get(location, headers={"HX-Request": "true"})
    assert fragment.status_code == 401 and "/auth/login" in fragment.headers["HX-Redirect"]
    login_token = csrf_from(anonymous.get("/auth/login").get_data(as_text=True))
    pressed = anonymous.post(f"/reports/annual/{YEAR}/pdf", data={"csrf_token": login_token})
    assert pressed.status_code == 302 and "/auth/login" in pressed.location
    assert anonymous.post(f"/reports/annual/{YEAR}/pdf").status_code == 400  # no CSRF token
    # Everyone signed in sees the report, so everyone signed in reaches its PDF.
    for role in ("contributor", "moderator", "admin"):
        other = signed_in(app, make_user(role, email=f"{role}.reader@kent.police.uk"))
        assert other.get(location).status_code == 200
        assert other.get(link).status_code == 200
    assert len(files(app)) == 1


def test_a_post_without_its_csrf_token_queues_nothing(app, member, library):
    assert member.post(f"/reports/annual/{YEAR}/pdf").status_code == 400
    assert files(app) == [] and pending(app) == 0


@pytest.mark.parametrize(
    "path",
    [
        "/reports/annual/0/pdf/1",
        "/reports/annual/1999/pdf/1",
        f"/reports/annual/{YEAR + 1}/pdf/1",
        "/reports/annual/3000000000/pdf/1",
        "/reports/annual/99999999999999999999999/pdf/1.pdf",
        f"/reports/annual/{YEAR}/pdf/0",
        f"/reports/annual/{YEAR}/pdf/2147483648",
        f"/reports/annual/{YEAR}/pdf/999",
        f"/reports/annual/{YEAR}/pdf/999.pdf",
        f"/reports/annual/{YEAR}/pdf/abc",
        f"/reports/annual/{YEAR}/pdf/-1.pdf",
        "/reports/annual/abc/pdf",
    ],
)
def test_odd_years_and_files_are_not_found(member, library, path):
    assert member.get(path).status_code == 404
    assert member.get(path, headers={"HX-Request": "true"}).status_code == 404


@pytest.mark.parametrize("year", ["0", "1999", str(YEAR + 1), "3000000000", "-1", "abc"])
def test_asking_for_an_odd_year_is_not_found_and_queues_nothing(app, member, library, year):
    response = member.post(f"/reports/annual/{year}/pdf", data={"csrf_token": token(member)})
    assert response.status_code == 404
    assert files(app) == [] and pending(app) == 0


def test_a_file_is_found_under_its_own_year_only(app, member, library, published):
    (older,) = published(case_study_line(title="Last year's practice"))
    with app.app_context():
        db.session.execute(
            update(CaseStudy)
            .where(CaseStudy.id == older)
            .values(first_published_at=datetime(YEAR - 1, 6, 1))
        )
        db.session.commit()
    location = ask(member).location
    run_queued(app)
    file_id = location.rsplit("/", 1)[1]
    assert member.get(f"/reports/annual/{YEAR - 1}").status_code == 200
    assert member.get(f"/reports/annual/{YEAR - 1}/pdf/{file_id}").status_code == 404
    assert member.get(f"/reports/annual/{YEAR - 1}/pdf/{file_id}.pdf").status_code == 404


@pytest.mark.parametrize("seen", ["", "%00", "x" * 5000, "done-100-0", "\u202e"])
def test_odd_polls_get_the_news_or_nothing(member, library, seen):
    location = ask(member).location
    response = member.get(location, query_string={"seen": seen}, headers={"HX-Request": "true"})
    assert response.status_code in (200, 204)


def test_a_file_not_yet_made_cannot_be_downloaded(app, member, library):
    location = ask(member).location
    assert member.get(f"{location}.pdf").status_code == 404
    with app.app_context():
        services._claim(int(location.rsplit("/", 1)[1]))
    assert member.get(f"{location}.pdf").status_code == 404


# 6. Limits


def test_making_pdfs_is_limited_only_when_it_queues_a_job(app, member, colleague, library):
    for _ in range(12):  # the same data: one job, then the same file for free
        assert ask(member).status_code == 303
    assert pending(app) == 1
    for n in range(9):  # nine changes of the data: nine more jobs
        with app.app_context():
            db.session.execute(
                update(User)
                .where(User.email == member.user.email)
                .values(listed_as_contact=True, contact_role=f"Lead {n}")
            )
            db.session.commit()
        assert ask(member).status_code == 303
    assert pending(app) == 10
    with app.app_context():
        db.session.execute(
            update(User).where(User.email == member.user.email).values(contact_role="Lead 10")
        )
        db.session.commit()
    refused = ask(member)
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    assert pending(app) == 10 and len(files(app)) == 10
    # The limit is each person's own: a colleague asking for the same data is not held back.
    assert ask(colleague).status_code == 303
    assert pending(app) == 11 and len(files(app)) == 11
