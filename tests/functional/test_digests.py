"""`portal send-digests`: one email per user of what they follow, never a case study twice."""

import email
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from portal.casestudies import services as casestudies
from portal.extensions import db
from portal.follows import services as follows
from portal.follows.digests import claim
from portal.jobs.mail import sweep_mail
from portal.models import (
    CaseStudy,
    DigestItem,
    Force,
    MailMessage,
    Theme,
    User,
    UserStatus,
    utcnow,
)

from ..records import case_study_line, outbox

MISOGYNY = "Challenging misogyny"
WELLBEING = "Men's health and wellbeing"


def digests(app) -> list[email.message.EmailMessage]:
    return [m for m in outbox(app) if m["Subject"].startswith("Your weekly digest")]


def body_of(message) -> str:
    return message.get_body(("plain",)).get_content()


@pytest.fixture
def reader(app, make_user):
    """Make a user who follows these forces (names) and themes (names); return their email."""

    def make(*, forces=(), themes=(), email_address=None, **user):
        made = make_user("contributor", email=email_address, **user)
        with app.app_context():
            person = db.session.scalar(select(User).where(User.email == made.email))
            for name in forces:
                follows.follow(person, db.session.scalar(select(Force).where(Force.name == name)))
            for name in themes:
                follows.follow(person, db.session.scalar(select(Theme).where(Theme.name == name)))
        return made.email

    return make


@pytest.fixture
def publish(app, published):
    """Publish case studies, first published `days_ago` days ago; return their ids."""

    def add(*records, days_ago: float = 1) -> list[int]:
        added = published(*records)
        with app.app_context():
            for case_study in db.session.scalars(select(CaseStudy).where(CaseStudy.id.in_(added))):
                case_study.first_published_at = utcnow() - timedelta(days=days_ago)
            db.session.commit()
        return added

    return add


def send(runner, *args):
    result = runner.invoke(args=["send-digests", *args])
    assert result.exit_code == 0, result.output
    return result.output.strip()


def test_running_twice_sends_nothing_twice(app, runner, reader, publish):
    to = reader(themes=[MISOGYNY])
    publish(case_study_line(title="First"), case_study_line(title="Second"))

    assert send(runner) == "1 digest queued for delivery, 2 case studies."
    assert send(runner) == "0 digests queued for delivery, 0 case studies."
    [message] = digests(app)
    assert message["To"] == to
    assert message["Subject"] == "Your weekly digest: 2 new case studies"


def test_a_case_study_published_after_a_run_goes_alone_in_the_next(app, runner, reader, publish):
    reader(themes=[MISOGYNY])
    publish(case_study_line(title="Old news"))
    send(runner)
    publish(case_study_line(title="Fresh news"))

    assert send(runner) == "1 digest queued for delivery, 1 case study."
    first, second = digests(app)
    assert "Old news" in body_of(first)
    assert "Fresh news" in body_of(second)
    assert "Old news" not in body_of(second)
    assert second["Subject"] == "Your weekly digest: 1 new case study"


def test_the_digest_says_what_where_and_how_to_stop(app, runner, reader, publish):
    reader(forces=["Northamptonshire Police"])
    [case_study_id] = publish(
        case_study_line(title="Tea & talk <together>", summary="A summary & more.")
    )
    send(runner)
    [message] = digests(app)
    text = body_of(message)
    base = app.config["BASE_URL"]
    assert "Tea & talk <together>" in text  # plain text: nothing escaped
    assert "Northamptonshire Police" in text
    assert "A summary & more." in text
    assert f"{base}/case-studies/{case_study_id}/tea-and-talk-together\n" in text
    assert f"{base}/account/following" in text
    assert "You follow Northamptonshire Police." in text
    assert "sarah.khan@" not in text  # the contact's email stays on the case study page


def test_one_email_per_user_even_when_force_and_theme_both_match(app, runner, reader, publish):
    reader(forces=["Northamptonshire Police"], themes=[MISOGYNY, "Partnership working"])
    publish(case_study_line(title="Matches three ways"))
    assert send(runner) == "1 digest queued for delivery, 1 case study."
    [message] = digests(app)
    assert body_of(message).count("Matches three ways") == 1
    assert "You follow Northamptonshire Police, Challenging misogyny, Partnership working." in (
        body_of(message)
    )


def test_each_user_gets_their_own_digest(app, runner, reader, publish):
    kent = reader(forces=["Kent Police"])
    wellbeing = reader(themes=[WELLBEING])
    publish(
        case_study_line(title="From Kent", force="Kent Police", themes=["Partnership working"]),
        case_study_line(title="On wellbeing", themes=[WELLBEING]),
    )
    assert send(runner) == "2 digests queued for delivery, 2 case studies."
    by_reader = {m["To"]: body_of(m) for m in digests(app)}
    assert "From Kent" in by_reader[kent] and "On wellbeing" not in by_reader[kent]
    assert "On wellbeing" in by_reader[wellbeing] and "From Kent" not in by_reader[wellbeing]


def test_what_is_not_new_published_and_followed_is_never_sent(
    app, runner, reader, publish, make_user
):
    reader(themes=[MISOGYNY])
    publish(case_study_line(title="Too old"), days_ago=8)
    publish(case_study_line(title="Not followed", themes=[WELLBEING], force="Kent Police"))
    publish(
        case_study_line(title="A draft", status="draft"),
        case_study_line(title="Waiting", status="submitted"),
    )
    [archived] = publish(case_study_line(title="Archived"))
    moderator = make_user("moderator")
    with app.app_context():
        actor = db.session.scalar(select(User).where(User.email == moderator.email))
        casestudies.archive(actor, db.session.get(CaseStudy, archived))
    # Imported drafts have no first publication; give one anyway, as if published then pulled.
    with app.app_context():
        for case_study in db.session.scalars(select(CaseStudy)):
            case_study.first_published_at = case_study.first_published_at or utcnow()
        db.session.commit()

    assert send(runner) == "0 digests queued for delivery, 0 case studies."
    assert digests(app) == []


def test_a_wider_window_reaches_older_case_studies(app, runner, reader, publish):
    reader(themes=[MISOGYNY])
    publish(case_study_line(title="Ten days old"), days_ago=10)
    assert send(runner) == "0 digests queued for delivery, 0 case studies."
    assert send(runner, "--days", "14") == "1 digest queued for delivery, 1 case study."


def test_unfollowing_stops_the_digest(app, runner, reader, publish):
    to = reader(themes=[MISOGYNY])
    with app.app_context():
        person = db.session.scalar(select(User).where(User.email == to))
        follows.unfollow(person, db.session.scalar(select(Theme).where(Theme.name == MISOGYNY)))
    publish(case_study_line())
    assert send(runner) == "0 digests queued for delivery, 0 case studies."


@pytest.mark.parametrize("change", ["disabled", "opted_out"])
def test_disabled_and_opted_out_users_get_nothing(app, runner, reader, publish, change):
    to = reader(themes=[MISOGYNY])
    with app.app_context():
        person = db.session.scalar(select(User).where(User.email == to))
        if change == "disabled":
            person.status = UserStatus.DISABLED
        else:
            follows.set_wants_digest(person, False)
        db.session.commit()
    publish(case_study_line())
    assert send(runner) == "0 digests queued for delivery, 0 case studies."
    assert digests(app) == []


def test_what_another_run_claimed_is_not_sent_again(app, runner, reader, publish):
    to = reader(themes=[MISOGYNY])
    [taken, free] = publish(case_study_line(title="Taken"), case_study_line(title="Free"))
    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.email == to))
        # Two runs claiming at once: the unique pair gives each case study to one of them.
        assert claim(user_id, [taken], utcnow()) == {taken}
        assert claim(user_id, [taken, free], utcnow()) == {free}
        db.session.execute(DigestItem.__table__.delete().where(DigestItem.case_study_id == free))
        db.session.commit()

    assert send(runner) == "1 digest queued for delivery, 1 case study."
    [message] = digests(app)
    assert "Free" in body_of(message) and "Taken" not in body_of(message)


def test_a_mail_server_that_is_down_delays_the_digest_and_never_doubles_it(
    app, runner, reader, publish
):
    reader(themes=[MISOGYNY])
    publish(case_study_line())
    # A mail server that refuses the connection (nothing listens on port 1).
    app.config.update(MAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=1)
    assert send(runner) == "1 digest queued for delivery, 1 case study."
    assert digests(app) == []  # the worker tried: the server was down
    assert send(runner) == "0 digests queued for delivery, 0 case studies."

    app.config.update(MAIL_BACKEND="file")  # back: the next try delivers it, once
    with app.app_context():
        db.session.execute(update(MailMessage).values(next_attempt_at=utcnow()))
        db.session.commit()
        sweep_mail()
    assert len(digests(app)) == 1


def test_two_runs_at_once_never_send_a_case_study_twice(app, reader, publish):
    import threading
    from collections import Counter

    from portal.follows.digests import send_digests

    people = [
        reader(themes=[MISOGYNY], email_address=f"reader{n}@kent.police.uk") for n in range(5)
    ]
    titles = [f"Case study {n}" for n in range(3)]
    publish(*(case_study_line(title=t) for t in titles))
    start = threading.Barrier(2)
    errors = []

    def run():
        try:
            with app.app_context():
                start.wait()
                send_digests()
        except Exception as error:  # reported below, not swallowed
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []

    sent = Counter()
    for message in digests(app):
        for title in titles:
            if title in body_of(message):
                sent[message["To"], title] += 1
    assert sent == Counter({(person, title): 1 for person in people for title in titles})
