"""The scale-out path: limits shared through Redis, the index written with the content."""

from __future__ import annotations

import multiprocessing

import pytest
from sqlalchemy import func, select, text

from portal.config import ConfigError
from portal.extensions import db
from portal.models import SearchOutbox
from portal.search import SearchQuery, get_backend

from ..backends import REDIS, SEARCH, SERVER
from ..conftest import make_app
from ..records import case_study_line

needs_redis = pytest.mark.skipif(not REDIS, reason="needs Redis: the PostgreSQL pass of make test")
needs_postgres_search = pytest.mark.skipif(
    SEARCH != "postgres", reason="PostgreSQL search: the PostgreSQL pass of make test"
)


def _fail_sign_ins(instance: str, config: dict, email: str, times: int, results) -> None:
    """Another process (another host, as far as limits go) failing to sign in."""
    from portal import create_app

    app = create_app({"INSTANCE_PATH": instance, "TESTING": True, **config})
    client = app.test_client()
    import re

    codes = []
    for _ in range(times):
        page = client.get("/auth/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        response = client.post(
            "/auth/login",
            data={"email": email, "password": "not the password", "csrf_token": token},
            environ_base={"REMOTE_ADDR": "10.9.8.7"},
        )
        codes.append(response.status_code)
    with app.app_context():
        db.engine.dispose()
    results.put(codes)


@needs_redis
def test_sign_in_limits_hold_across_processes_through_redis(app, client, auth, make_user):
    user = make_user("contributor", email="shared.limit@kent.police.uk")
    config = {
        "DATABASE_URL": app.config["DATABASE_URL"],
        "SEARCH_BACKEND": app.config["SEARCH_BACKEND"],
        "RATELIMIT_STORAGE_URL": app.config["RATELIMIT_STORAGE_URL"],
    }
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    other = context.Process(
        target=_fail_sign_ins, args=(app.instance_path, config, user.email, 6, results)
    )
    other.start()
    codes = results.get(timeout=60)
    other.join(30)
    assert codes == [400] * 6  # wrong password, the form again: counted in Redis
    # This process, from another address: the account's limit (10 per 5 minutes) is shared.
    for attempt in range(4):
        response = client.post(
            "/auth/login",
            data={"email": user.email, "password": "still wrong", "csrf_token": auth.csrf()},
        )
        assert response.status_code == 400, attempt
    response = client.post(
        "/auth/login",
        data={"email": user.email, "password": "still wrong", "csrf_token": auth.csrf()},
    )
    assert response.status_code == 429


def test_postgres_search_needs_a_postgresql_database(tmp_path):
    with pytest.raises(ConfigError, match="PORTAL_DATABASE_URL=postgresql"):
        make_app(tmp_path / "inst", SEARCH_BACKEND="postgres", DATABASE_URL="sqlite://")


@needs_postgres_search
def test_publishing_writes_the_search_entry_in_the_same_transaction(app, published):
    ids = published(case_study_line(title="Written with its entry"))
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SearchOutbox)) == 0
        assert get_backend().query(SearchQuery(text="written entry")).total == 1
        # A change rolled back takes its index change with it.
        from portal.search.sync import queue_change

        db.session.execute(text("UPDATE revision SET title = 'Vanished zebra' "))
        queue_change(ids[0])
        assert get_backend().query(SearchQuery(text="zebra")).total == 1  # inside it
        db.session.rollback()
        assert get_backend().query(SearchQuery(text="zebra")).total == 0
        assert get_backend().query(SearchQuery(text="written entry")).total == 1


@pytest.mark.skipif(not SERVER, reason="on PostgreSQL only: the PostgreSQL pass of make test")
def test_the_migrations_leave_nothing_for_autogenerate_on_postgresql(runner):
    result = runner.invoke(args=["db", "check"])
    assert result.exit_code == 0, result.output


@needs_postgres_search
def test_a_broad_query_ranks_on_headings_and_still_puts_title_matches_first(
    app, published, monkeypatch
):
    from portal.search import postgres_backend

    monkeypatch.setattr(postgres_backend, "RANK_WHOLE_DOCUMENTS", 0)  # every query is broad
    published(
        case_study_line(title="Walks and talks", body="Rugby came up at the end."),
        case_study_line(title="Rugby allies", body="Players stood with the women's team."),
    )
    with app.app_context():
        found = get_backend().query(SearchQuery(text="rugby"))
        from portal.models import Revision

        titles = [db.session.scalars(
            select(Revision.title).where(Revision.case_study_id == h.case_study_id)
        ).first() for h in found.hits]  # fmt: skip
    assert found.total == 2 and titles[0] == "Rugby allies"
