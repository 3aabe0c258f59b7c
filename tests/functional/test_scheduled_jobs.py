"""The worker's scheduled jobs: digests, search-index repair and retention, with no cron line.

The schedules are tested on their own (the UTC minutes they fire in, across the clock
changes); each job is run against the real database as the worker runs it; and a real
`portal worker` process is started to show its scheduler runs them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, func, insert, select

from portal.casestudies.importer import import_case_studies
from portal.extensions import db
from portal.follows import jobs as follow_jobs
from portal.follows import services as follows
from portal.jobs import queue_of, run_periodic
from portal.jobs.retention import delete_in_batches, purge_audit, purge_mail, purge_report_files
from portal.jobs.schedules import daily_uk, every_minute, run_once_per_slot, uk_time
from portal.models import (
    AuditEvent,
    CaseStudy,
    DigestItem,
    MailMessage,
    MailState,
    ReportFile,
    ReportFileState,
    ScheduledRun,
    SearchLog,
    SearchOutbox,
    Theme,
    User,
    utcnow,
)
from portal.search import SearchQuery, get_backend
from portal.search import jobs as search_jobs

from ..backends import SEARCH, whoosh_only
from ..records import case_study_line, outbox

UK = ZoneInfo("Europe/London")
DEFAULTS = {"DIGEST_DAY": "mon", "DIGEST_HOUR": 7}


def utc(*parts: int) -> datetime:
    """A naive UTC datetime, as Huey (utc=True) hands the schedules."""
    return datetime(*parts)


def firing_minutes(test, start: datetime, days: int) -> list[datetime]:
    """Every minute from `start` for `days` days at which `test` says "run now"."""
    minutes = []
    for n in range(days * 24 * 60):
        moment = start + timedelta(minutes=n, seconds=17)  # Huey checks at any second
        if test(moment):
            minutes.append(moment.replace(second=0))
    return minutes


def uk_clock(moment: datetime) -> str:
    return moment.replace(tzinfo=UTC).astimezone(UK).strftime("%a %d %b %H:%M %Z")


# When each job runs


def test_the_digest_goes_at_7_on_a_january_monday_which_is_7_utc():
    weekly = follow_jobs.weekly(DEFAULTS)
    assert weekly(utc(2026, 1, 5, 7, 0)) and weekly(utc(2026, 1, 5, 7, 0, 59))
    assert not weekly(utc(2026, 1, 5, 6, 59)) and not weekly(utc(2026, 1, 5, 7, 1))
    assert not weekly(utc(2026, 1, 6, 7, 0))  # a Tuesday
    assert not weekly(utc(2026, 1, 4, 7, 0))  # a Sunday


def test_the_digest_goes_at_7_on_a_july_monday_which_is_6_utc():
    weekly = follow_jobs.weekly(DEFAULTS)
    assert weekly(utc(2026, 7, 6, 6, 0))
    assert not weekly(utc(2026, 7, 6, 7, 0))  # 08:00 in the UK


@pytest.mark.parametrize(
    "week, expected",
    [
        # The clocks go forward on Sunday 29 March 2026 and back on Sunday 25 October 2026.
        (datetime(2026, 3, 23), ["Mon 23 Mar 07:00 GMT", "Mon 30 Mar 07:00 BST"]),
        (datetime(2026, 10, 19), ["Mon 19 Oct 07:00 BST", "Mon 26 Oct 07:00 GMT"]),
    ],
    ids=["spring forward", "fall back"],
)
def test_the_digest_goes_once_a_week_at_7_uk_time_across_the_clock_changes(week, expected):
    minutes = firing_minutes(follow_jobs.weekly(DEFAULTS), week, days=14)
    assert [uk_clock(m) for m in minutes] == expected


def test_the_digest_day_and_hour_are_the_settings():
    weekly = follow_jobs.weekly({"DIGEST_DAY": "fri", "DIGEST_HOUR": 18})
    assert [uk_clock(m) for m in firing_minutes(weekly, datetime(2026, 6, 1), days=7)] == [
        "Fri 05 Jun 18:00 BST"
    ]


def test_an_hour_the_clocks_skip_or_repeat_still_fires_exactly_once():
    at_one = uk_time(1, 0, day="sun")
    # 29 March: 01:00 GMT becomes 02:00 BST, so 01:00 never shows; it fires at that moment.
    assert firing_minutes(at_one, datetime(2026, 3, 28, 12), days=1) == [utc(2026, 3, 29, 1, 0)]
    # 25 October: 01:00-01:59 happens twice (BST, then GMT); only the first fires.
    assert firing_minutes(at_one, datetime(2026, 10, 24, 12), days=1) == [utc(2026, 10, 25, 0, 0)]


def test_a_schedule_reads_an_aware_time_in_any_zone_as_the_same_moment():
    weekly = follow_jobs.weekly(DEFAULTS)
    assert weekly(datetime(2026, 7, 6, 7, 0, tzinfo=UK))
    assert weekly(datetime(2026, 7, 6, 2, 0, tzinfo=ZoneInfo("America/New_York")))
    assert not weekly(datetime(2026, 7, 6, 7, 0, tzinfo=UTC))


def test_retention_runs_daily_at_half_past_three_uk_time_in_every_season():
    daily = daily_uk(3, 30)({})
    minutes = firing_minutes(daily, datetime(2026, 3, 27), days=4)
    assert [uk_clock(m) for m in minutes] == [
        "Fri 27 Mar 03:30 GMT",
        "Sat 28 Mar 03:30 GMT",
        "Sun 29 Mar 03:30 BST",
        "Mon 30 Mar 03:30 BST",
    ]


def test_the_search_repair_runs_at_every_check():
    repair = every_minute({})
    assert all(repair(utc(2026, 1, 1) + timedelta(seconds=s)) for s in range(0, 3600, 7))


def test_the_worker_checks_every_scheduled_job_at_each_minute(app):
    """Timed jobs are checked every minute and run once per slot (run_once_per_slot)."""
    scheduled_here = {"repair_search_index", "send_digests", "retention", "purge_search_insights"}

    def queued_at(moment: datetime) -> set[str]:
        return {task.name for task in queue_of(app).huey.read_periodic(moment)} & scheduled_here

    for moment in (utc(2026, 7, 8, 12, 34), utc(2026, 7, 6, 6, 0), utc(2026, 1, 7, 3, 30)):
        assert queued_at(moment) == scheduled_here


def test_a_slot_runs_once_however_many_checks_and_late_when_its_minute_was_missed(app):
    weekly = follow_jobs.weekly(DEFAULTS)
    runs = []

    def check(now: datetime) -> None:
        run_once_per_slot("test", weekly.latest(now), runs.append, now=now)

    with app.app_context():
        check(utc(2026, 6, 1, 5, 59, 59))  # the first check ever: the schedule starts here
        assert runs == []
        check(utc(2026, 6, 1, 6, 1, 4))  # 07:00 BST was checked 64 s late: still runs
        check(utc(2026, 6, 1, 6, 1, 4))  # a second scheduler, the same minute
        check(utc(2026, 6, 3, 12, 0))
        assert runs == [utc(2026, 5, 25, 6, 0)]  # the slot before it, once
        check(utc(2026, 6, 29, 9, 0))  # no worker for three weeks: the latest slot, once
        assert runs[1:] == [utc(2026, 6, 1, 6, 0)]
        check(utc(2026, 6, 29, 9, 1))
        assert len(runs) == 2


def test_a_slot_whose_work_failed_is_tried_again_at_the_next_check(app):
    with app.app_context():
        slot = utc(2026, 6, 1, 6, 0)
        run_once_per_slot("test", slot - timedelta(days=7), print)

        def fail(previous):
            raise RuntimeError("the database went away")

        with pytest.raises(RuntimeError):
            run_once_per_slot("test", slot, fail)
        assert run_once_per_slot("test", slot, lambda previous: "done") == "done"
        assert run_once_per_slot("test", slot, lambda previous: "again") is None


def test_digests_missed_for_weeks_go_out_late_covering_every_week(app, make_user, published):
    to = follower(app, make_user, "Women in sport")
    (case_id,) = published(case_study_line(title="Twenty days old", themes=["Women in sport"]))
    with app.app_context():
        db.session.get(CaseStudy, case_id).first_published_at = utcnow() - timedelta(days=20)
        # The digests last ran four weeks ago; no worker has run since.
        db.session.add(ScheduledRun(name="send_digests", slot_at=utcnow() - timedelta(days=28)))
        db.session.commit()
    task = queue_of(app).tasks["send_digests"]
    queue_of(app).huey.execute(task.s())  # the worker's next check
    [digest] = [m for m in outbox(app) if m["To"] == to]
    assert "Twenty days old" in digest.get_body(("plain",)).get_content()
    queue_of(app).huey.execute(task.s())
    assert len([m for m in outbox(app) if m["To"] == to]) == 1


# What each job does


def follower(app, make_user, theme: str) -> str:
    made = make_user("contributor")
    with app.app_context():
        person = db.session.scalar(select(User).where(User.email == made.email))
        follows.follow(person, db.session.scalar(select(Theme).where(Theme.name == theme)))
    return made.email


def test_the_weekly_job_sends_the_digests_and_a_second_run_sends_nothing(app, make_user, published):
    to = follower(app, make_user, "Challenging misogyny")
    [case_study_id] = published(case_study_line(title="Allies on the touchline"))
    with app.app_context():
        db.session.get(CaseStudy, case_study_id).first_published_at = utcnow() - timedelta(days=1)
        db.session.commit()

    assert run_periodic("send_digests", app) == 1
    assert run_periodic("send_digests", app) == 0
    [digest] = [m for m in outbox(app) if m["Subject"].startswith("Your weekly digest")]
    assert digest["To"] == to
    assert "Allies on the touchline" in digest.get_body(("plain",)).get_content()


def test_a_case_study_published_just_after_last_weeks_run_is_in_this_weeks(
    app, make_user, published
):
    """When the clocks go back, a week of Mondays at 07:00 UK time is 7 days and an hour:
    what was published in that hour after the last run is still sent, once."""
    follower(app, make_user, "Challenging misogyny")
    [case_study_id] = published(case_study_line(title="Published at half past seven"))
    with app.app_context():
        published_at = utcnow() - timedelta(days=7, minutes=30)
        db.session.get(CaseStudy, case_study_id).first_published_at = published_at
        db.session.commit()

    assert run_periodic("send_digests", app) == 1
    assert run_periodic("send_digests", app) == 0
    [digest] = outbox(app)
    assert "Published at half past seven" in digest.get_body(("plain",)).get_content()


def test_digest_records_older_than_any_digest_window_are_forgotten(app, make_user, published):
    email = follower(app, make_user, "Challenging misogyny")
    ids = published(case_study_line(title="One"), case_study_line(title="Two"))
    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.email == email))
        now = utcnow()
        db.session.add_all(
            [
                DigestItem(user_id=user_id, case_study_id=ids[0], sent_at=now - timedelta(401)),
                DigestItem(user_id=user_id, case_study_id=ids[1], sent_at=now - timedelta(399)),
            ]
        )
        db.session.commit()
        assert follow_jobs.forget_old_digest_items() == 1
        assert list(db.session.scalars(select(DigestItem.case_study_id))) == [ids[1]]


def searchable(app, words: str) -> int:
    with app.app_context():
        return get_backend().query(SearchQuery(text=words)).total


@whoosh_only
def test_the_repair_makes_a_change_whose_apply_was_lost_searchable(app, published):
    """As when a web worker is killed after the commit: the change waits in the outbox."""
    published(case_study_line(title="Already in the index"))
    with app.app_context():
        import_case_studies([json.dumps(case_study_line(title="Kingfisher patrols"))])
        assert db.session.scalar(select(func.count()).select_from(SearchOutbox)) == 1
    assert searchable(app, "kingfisher") == 0

    assert run_periodic("repair_search_index", app) == 1
    assert searchable(app, "kingfisher") == 1
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SearchOutbox)) == 0
    assert run_periodic("repair_search_index", app) == 0  # nothing left: nothing done


def test_a_repair_does_not_start_beside_one_still_running(app, published):
    [case_study_id] = published(case_study_line(title="Kingfisher patrols"))
    with app.app_context():
        db.session.add(SearchOutbox(case_study_id=case_study_id))
        db.session.commit()
    with search_jobs._RUNNING:  # a long repair (a rebuild) is still going in this process
        assert run_periodic("repair_search_index", app) == 0
    assert run_periodic("repair_search_index", app) == 1


@pytest.mark.skipif(SEARCH != "postgres", reason="about PostgreSQL's search")
def test_on_postgresql_the_repair_finds_nothing_to_do(app):
    with app.app_context():
        import_case_studies([json.dumps(case_study_line(title="Kingfisher patrols"))])
    assert searchable(app, "kingfisher") == 1  # written in the import's own transaction
    assert run_periodic("repair_search_index", app) == 0


def days_ago(days: float) -> datetime:
    return utcnow() - timedelta(days=days)


def test_search_insights_past_their_retention_are_deleted(app):
    with app.app_context():
        for age in (91, 89, 1):
            db.session.add(SearchLog(created_at=days_ago(age), query_text=f"{age}", results=1))
        db.session.commit()
    assert run_periodic("purge_search_insights", app) == 1
    with app.app_context():
        assert sorted(db.session.scalars(select(SearchLog.query_text))) == ["1", "89"]


def audit_ages(app) -> list[int]:
    with app.app_context():
        return sorted(int(d) for d in db.session.scalars(select(AuditEvent.detail)))


def add_audit(app, *ages: int) -> None:
    with app.app_context():
        for age in ages:
            db.session.add(AuditEvent(at=days_ago(age), action="test.event", detail=str(age)))
        db.session.commit()


def test_audit_events_older_than_two_years_are_deleted(app):
    add_audit(app, 731, 729, 3)
    with app.app_context():
        assert purge_audit() == 1
    assert audit_ages(app) == [3, 729]


def test_audit_events_follow_the_setting(app):
    add_audit(app, 2191, 2189, 3)
    app.config["AUDIT_RETENTION_DAYS"] = 2190
    with app.app_context():
        assert purge_audit() == 1
    assert audit_ages(app) == [3, 2189]


def test_audit_events_are_kept_for_ever_when_the_setting_is_0(app):
    add_audit(app, 9000, 2191)
    app.config["AUDIT_RETENTION_DAYS"] = 0
    with app.app_context():
        assert purge_audit() == 0
    assert audit_ages(app) == [2191, 9000]


def test_a_large_backlog_is_deleted_in_batches_each_its_own_commit(app):
    add_audit(app, *range(3000, 3007), 5)
    statements = []

    def seen(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith(("DELETE", "COMMIT")):
            statements.append(statement.split()[0].upper())

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", seen)
        try:
            assert purge_audit(batch=3) == 7
        finally:
            event.remove(db.engine, "before_cursor_execute", seen)
    assert statements.count("DELETE") == 3  # 3 + 3 + 1 rows
    assert audit_ages(app) == [5]


def add_mail(app, label: str, state: MailState, made: float, *, sent=None, tried=None) -> None:
    """Record a message (straight into the table: no delivery is queued for it)."""
    with app.app_context():
        db.session.execute(
            insert(MailMessage).values(
                created_at=days_ago(made),
                message_id=f"<{label}@test.invalid>",
                to="someone@kent.police.uk",
                subject=label,
                body="A reset link, perhaps.",
                state=state,
                attempts=1,
                next_attempt_at=days_ago(made if tried is None else tried),
                last_error="",
                sent_at=None if sent is None else days_ago(sent),
            )
        )
        db.session.commit()


def mail_left(app) -> list[str]:
    with app.app_context():
        return sorted(db.session.scalars(select(MailMessage.subject)))


def test_mail_is_kept_30_days_after_sending_and_undelivered_mail_90_days(app):
    add_mail(app, "sent long ago", MailState.SENT, 40, sent=31)
    add_mail(app, "sent this month", MailState.SENT, 40, sent=29)
    add_mail(app, "failed long ago", MailState.FAILED, 91)
    add_mail(app, "failed lately", MailState.FAILED, 89)
    add_mail(app, "unconfirmed long ago", MailState.UNCONFIRMED, 91)
    add_mail(app, "failed again after a resend", MailState.FAILED, 200, tried=2)
    for state in (MailState.WAITING, MailState.SENDING, MailState.HANDED_OVER):
        add_mail(app, f"{state.value} for a year", state, 365)

    with app.app_context():
        assert purge_mail() == 3
    assert mail_left(app) == [
        "failed again after a resend",
        "failed lately",
        "handed_over for a year",
        "sending for a year",
        "sent this month",
        "waiting for a year",
    ]


def test_mail_retention_is_a_setting(app):
    add_mail(app, "sent 8 days ago", MailState.SENT, 9, sent=8)
    add_mail(app, "sent 6 days ago", MailState.SENT, 9, sent=6)
    app.config["MAIL_RETENTION_DAYS"] = 7
    with app.app_context():
        assert purge_mail() == 1
    assert mail_left(app) == ["sent 6 days ago"]


def add_report(app, year: int, version: str, state: ReportFileState, *, finished=None, asked=0):
    with app.app_context():
        db.session.add(
            ReportFile(
                year=year,
                data_version=version,
                state=state,
                requested_at=days_ago(asked),
                finished_at=None if finished is None else days_ago(finished),
                pdf=b"%PDF-1.7" if state == ReportFileState.DONE else None,
            )
        )
        db.session.commit()


def test_only_the_newest_finished_report_of_each_year_is_kept(app):
    done, failed = ReportFileState.DONE, ReportFileState.FAILED
    add_report(app, 2025, "old figures", done, finished=10, asked=10)
    add_report(app, 2025, "older figures", done, finished=20, asked=20)
    add_report(app, 2025, "new figures", done, finished=2, asked=2)
    add_report(app, 2024, "the only one", done, finished=100, asked=100)
    add_report(app, 2026, "made last week", done, finished=5, asked=5)
    add_report(app, 2026, "made an hour ago", done, finished=1 / 24, asked=1 / 24)
    add_report(app, 2026, "queued long ago", ReportFileState.QUEUED, asked=60)
    add_report(app, 2026, "running", ReportFileState.RUNNING, asked=60)
    add_report(app, 2023, "failed long ago", failed, asked=31)
    add_report(app, 2023, "failed lately", failed, asked=29)

    with app.app_context():
        assert purge_report_files() == 3
        assert purge_report_files() == 0
        left = sorted(db.session.scalars(select(ReportFile.data_version)))
    assert left == [
        "failed lately",
        "made an hour ago",
        "made last week",  # a newer one, but only for an hour: links to this one still work
        "new figures",
        "queued long ago",
        "running",
        "the only one",
    ]


def test_the_daily_retention_job_runs_every_part(app):
    add_audit(app, 731)
    add_mail(app, "sent long ago", MailState.SENT, 40, sent=31)
    assert run_periodic("retention", app) == {
        "purge_mail": 1,
        "purge_audit": 1,
        "purge_report_files": 0,
        "purge_unconfirmed": 0,
        "purge_sign_in_states": 0,
    }


def test_batches_delete_only_what_matches(app):
    add_audit(app, 10, 20, 30)
    with app.app_context():
        assert delete_in_batches(AuditEvent, AuditEvent.at < days_ago(15), batch=1) == 2
    assert audit_ages(app) == [10]


# The worker process


def worker_environment(app) -> dict[str, str]:
    """The environment of a worker of this app: same instance folder, database and queue."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update(
        PORTAL_INSTANCE_PATH=app.instance_path,
        PORTAL_DATABASE_URL=app.config["DATABASE_URL"],
        PORTAL_SEARCH_BACKEND=app.config["SEARCH_BACKEND"],
        PORTAL_QUEUE_URL=app.config["QUEUE_URL"],
        PORTAL_QUEUE_NAME=app.config["QUEUE_NAME"],
        PORTAL_ENV="development",
    )
    return env


def wait_for(check, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def test_portal_worker_runs_the_scheduled_jobs_and_stops_cleanly_on_ctrl_c(app, published):
    # Mail recorded without its delivery being queued (as when the queue was down): only the
    # scheduler's sweep can find it. And a search change whose apply after the commit was lost.
    add_mail(app, "Reset your password", MailState.WAITING, 0)
    published(case_study_line(title="Already in the index"))
    assert searchable(app, "kingfisher") == 0
    with app.app_context():
        import_case_studies([json.dumps(case_study_line(title="Kingfisher patrols"))])
    outbox_folder = Path(app.config["OUTBOX_PATH"])
    assert not list(outbox_folder.glob("*.eml"))

    worker = subprocess.Popen(
        [Path(sys.executable).parent / "portal", "worker", "--threads", "2"],
        env=worker_environment(app),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        delivered = wait_for(lambda: list(outbox_folder.glob("*.eml")), 10)
        repaired = wait_for(lambda: searchable(app, "kingfisher") == 1, 5)
    finally:
        worker.send_signal(signal.SIGINT)
        try:
            output, _ = worker.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            output, _ = worker.communicate()
            pytest.fail(f"the worker did not stop on SIGINT:\n{output}")

    assert delivered, output
    assert repaired, output
    assert worker.returncode == 0, output
    assert "Traceback" not in output, output
    [message] = outbox_folder.glob("*.eml")
    assert b"Subject: Reset your password" in message.read_bytes()
    with app.app_context():
        assert db.session.scalar(select(MailMessage.state)) == MailState.SENT
