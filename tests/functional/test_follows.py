"""Following forces and themes: the buttons, the following page and the digest setting."""

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Follow, Force, Theme, User

from ..conftest import csrf_from


def ids(app, model, slug):
    with app.app_context():
        return db.session.scalar(select(model.id).where(model.slug == slug))


def follows_of(app, email) -> set[tuple[str, str]]:
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        rows = db.session.scalars(select(Follow).where(Follow.user_id == user.id)).all()
        return {("force", f.force.slug) if f.force_id else ("theme", f.theme.slug) for f in rows}


def post(client, path, htmx=False, **data):
    token = csrf_from(client.get("/account/following").get_data(as_text=True))
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post(path, data={"csrf_token": token, **data}, headers=headers)


def test_following_page_lists_every_theme_with_a_follow_button(member, app):
    html = member.get("/account/following").get_data(as_text=True)
    with app.app_context():
        themes = db.session.scalars(select(Theme)).all()
        assert themes
        for theme in themes:
            assert f'action="/account/following/theme/{theme.id}"' in html
    assert 'href="/forces"' in html
    assert 'href="/feed.atom"' in html
    assert "Do you want the weekly digest?" in html


def test_follow_a_theme_without_javascript_then_unfollow_it(member, app):
    theme = ids(app, Theme, "challenging-misogyny")
    response = post(member, f"/account/following/theme/{theme}", next="/account/following")
    assert response.status_code == 303
    assert response.location == "/account/following"
    assert follows_of(app, member.user.email) == {("theme", "challenging-misogyny")}

    page = member.get("/account/following").get_data(as_text=True)
    assert "You are now following Challenging misogyny." in page
    assert f'action="/account/following/theme/{theme}/unfollow"' in page
    assert 'href="/themes/challenging-misogyny/feed.atom"' in page

    response = post(member, f"/account/following/theme/{theme}/unfollow")
    assert response.status_code == 303
    assert follows_of(app, member.user.email) == set()


def test_follow_a_force_and_go_back_to_where_the_button_was(member, app):
    force = ids(app, Force, "kent-police")
    response = post(member, f"/account/following/force/{force}", next="/forces/kent-police")
    assert response.status_code == 303
    assert response.location == "/forces/kent-police"
    assert follows_of(app, member.user.email) == {("force", "kent-police")}
    page = member.get("/account/following").get_data(as_text=True)
    assert "Kent Police" in page
    assert 'href="/forces/kent-police/feed.atom"' in page


def test_the_way_back_is_never_another_site(member, app):
    force = ids(app, Force, "kent-police")
    response = post(member, f"/account/following/force/{force}", next="//evil.example/")
    assert response.location == "/account/following"


def test_following_twice_keeps_one_follow(member, app):
    theme = ids(app, Theme, "challenging-misogyny")
    for _ in range(2):
        assert post(member, f"/account/following/theme/{theme}").status_code == 303
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Follow)) == 1
    # Unfollowing what is not followed is harmless too.
    for _ in range(2):
        assert post(member, f"/account/following/theme/{theme}/unfollow").status_code == 303


def test_with_htmx_the_button_swaps_itself_and_the_change_is_announced(member, app):
    theme = ids(app, Theme, "challenging-misogyny")
    response = post(member, f"/account/following/theme/{theme}", htmx=True, next="/library")
    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]
    html = response.get_data(as_text=True)
    assert "<html" not in html
    assert f'id="follow-theme-{theme}"' in html
    assert f'action="/account/following/theme/{theme}/unfollow"' in html
    assert 'name="next" value="/library"' in html  # the way back survives the swap
    assert '<hx-partial hx-target="#announcer"' in html
    assert "You are now following Challenging misogyny." in html

    html = post(member, f"/account/following/theme/{theme}/unfollow", htmx=True).get_data(
        as_text=True
    )
    assert f'action="/account/following/theme/{theme}"' in html
    assert "You are no longer following Challenging misogyny." in html


def test_following_needs_the_csrf_token(member, app):
    theme = ids(app, Theme, "challenging-misogyny")
    response = member.post(f"/account/following/theme/{theme}")
    assert response.status_code == 400
    assert follows_of(app, member.user.email) == set()


@pytest.mark.parametrize(
    "path",
    [
        "/account/following/theme/99999",
        "/account/following/force/99999",
        "/account/following/force/99999/unfollow",
    ],
)
def test_following_something_unknown_is_404(member, path):
    assert post(member, path).status_code == 404


def test_an_unknown_kind_is_404(member):
    assert post(member, "/account/following/user/1").status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/account/following"),
        ("post", "/account/following/theme/1"),
        ("post", "/account/following/theme/1/unfollow"),
        ("post", "/account/following/digest"),
    ],
)
def test_anonymous_visitors_are_sent_to_sign_in(client, method, path):
    # A form from the sign-in page, so the CSRF check (which runs first) lets it through.
    token = csrf_from(client.get("/auth/login").get_data(as_text=True))
    data = {"csrf_token": token} if method == "post" else None
    response = getattr(client, method)(path, data=data)
    assert response.status_code == 302
    assert "/auth/login" in response.location


def test_anonymous_visitors_are_sent_to_sign_in_even_with_a_public_library(instance_path):
    from ..conftest import make_app

    client = make_app(instance_path, PUBLIC_LIBRARY=True).test_client()
    assert client.get("/account/following").status_code == 302
    token = csrf_from(client.get("/auth/login").get_data(as_text=True))
    response = client.post("/account/following/theme/1", data={"csrf_token": token})
    assert response.status_code == 302


def test_switch_the_digest_off_and_on(member, app):
    def wants(email):
        with app.app_context():
            return db.session.scalar(select(User.wants_digest).where(User.email == email))

    assert wants(member.user.email) is True
    response = post(member, "/account/following/digest", digest="no")
    assert response.status_code == 303
    assert wants(member.user.email) is False
    page = member.get("/account/following").get_data(as_text=True)
    assert "You will not get a weekly digest." in page
    assert 'value="no" checked' in page

    post(member, "/account/following/digest", digest="yes")
    assert wants(member.user.email) is True


def test_the_digest_setting_must_be_chosen(member, app):
    response = post(member, "/account/following/digest", digest="sometimes")
    assert response.status_code == 400
    assert "There is a problem" in response.get_data(as_text=True)


def test_a_follow_is_the_users_own(app, member, make_user, auth):
    from ..conftest import Auth

    theme = ids(app, Theme, "challenging-misogyny")
    post(member, f"/account/following/theme/{theme}")
    other = app.test_client()
    user = make_user("contributor", email="someone.else@kent.police.uk")
    Auth(other).login(user)
    page = other.get("/account/following").get_data(as_text=True)
    assert f'action="/account/following/theme/{theme}"' in page  # not followed by them
    assert follows_of(app, user.email) == set()


def test_the_button_shows_nothing_to_anonymous_visitors(app):
    from flask import render_template

    with app.app_context():
        theme = db.session.scalar(select(Theme))
        with app.test_request_context("/library"):
            html = render_template("follows/_button.html", follow_kind="theme", follow_target=theme)
    assert html.strip() == ""


@pytest.mark.parametrize("target", ["3000000000", "9223372036854775807", "9" * 30])
def test_following_an_id_beyond_any_row_is_not_found(member, target):
    token = csrf_from(member.get("/account/following").get_data(as_text=True))
    response = member.post(f"/account/following/force/{target}", data={"csrf_token": token})
    assert response.status_code == 404
