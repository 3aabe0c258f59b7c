"""Admins find users and change their status, role and force; every change is audited."""

import re

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, Role, User, UserStatus

from ..conftest import Auth, csrf_from
from ..records import case_study_line


@pytest.fixture
def admin(app, client, make_user):
    user = make_user("admin", email="chief.admin@kent.police.uk")
    assert Auth(client).login(user).status_code == 303
    return client


def user_id(app, address):
    with app.app_context():
        return db.session.scalar(select(User.id).where(User.email == address))


def load(app, address) -> User:
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == address))
        db.session.expunge(user)
        return user


def post_form(client, page_path, action_path, data):
    token = csrf_from(client.get(page_path).get_data(as_text=True))
    return client.post(action_path, data={**data, "csrf_token": token})


def last_audit(app) -> AuditEvent:
    with app.app_context():
        event = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        db.session.expunge(event)
        return event


def test_admin_lists_and_searches_users(admin, make_user):
    make_user(email="pat.jones@kent.police.uk", name="Pat Jones")
    make_user(email="lee.smith@kent.police.uk", name="Lee Smith")
    everyone = admin.get("/admin/users").get_data(as_text=True)
    assert "Pat Jones" in everyone and "Lee Smith" in everyone
    found = admin.get("/admin/users?q=JONES").get_data(as_text=True)
    assert "Pat Jones" in found and "Lee Smith" not in found
    assert "1 user matching" in found


@pytest.mark.parametrize(
    "query", ["?q=%25", "?q=_", "?page=0", "?page=-1", "?page=x", "?q=" + "a" * 1000]
)
def test_admin_user_search_survives_odd_input(admin, query):
    assert admin.get("/admin/users" + query).status_code == 200


def test_admin_changes_a_role_and_it_is_audited(app, admin, make_user):
    target = make_user(email="pat.jones@kent.police.uk")
    uid = user_id(app, target.email)
    response = post_form(
        admin, f"/admin/users/{uid}", f"/admin/users/{uid}/role", {"role": "moderator"}
    )
    assert response.status_code == 303
    assert load(app, target.email).role == Role.MODERATOR
    event = last_audit(app)
    assert event.action == "admin.user_role_changed" and event.target_id == uid
    assert '"to": "moderator"' in event.detail


def test_admin_moves_a_user_to_another_force_by_alias(app, admin, make_user):
    target = make_user(email="pat.jones@kent.police.uk")
    uid = user_id(app, target.email)
    with app.app_context():
        db.session.get(User, uid).listed_as_contact = True
        db.session.commit()
    response = post_form(
        admin, f"/admin/users/{uid}", f"/admin/users/{uid}/force", {"force": "GMP"}
    )
    assert response.status_code == 303
    with app.app_context():
        moved = db.session.get(User, uid)
        assert moved.force.name == "Greater Manchester Police"
        # Kent's contact is not Greater Manchester's until they opt in again.
        assert not moved.listed_as_contact
    assert last_audit(app).action == "admin.user_force_changed"


def test_an_unknown_force_is_an_error_next_to_the_field(app, admin, make_user):
    target = make_user(email="pat.jones@kent.police.uk")
    uid = user_id(app, target.email)
    response = post_form(
        admin, f"/admin/users/{uid}", f"/admin/users/{uid}/force", {"force": "Gotham"}
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert 'id="force-error"' in page and 'value="Gotham"' in page


def test_an_invalid_role_is_refused(app, admin, make_user):
    target = make_user(email="pat.jones@kent.police.uk")
    uid = user_id(app, target.email)
    response = post_form(
        admin, f"/admin/users/{uid}", f"/admin/users/{uid}/role", {"role": "superuser"}
    )
    assert response.status_code == 400
    assert load(app, target.email).role == Role.CONTRIBUTOR


def test_admin_confirms_a_pending_account(app, admin):
    other = app.test_client()
    token = csrf_from(other.get("/auth/register").get_data(as_text=True))
    other.post(
        "/auth/register",
        data={
            "name": "Riley Ward",
            "email": "riley.ward@kent.police.uk",
            "force": "Kent",
            "password": "seven hills and a quiet river",
            "csrf_token": token,
        },
    )
    uid = user_id(app, "riley.ward@kent.police.uk")
    response = post_form(admin, f"/admin/users/{uid}", f"/admin/users/{uid}/confirm", {})
    assert response.status_code == 303
    assert load(app, "riley.ward@kent.police.uk").status == UserStatus.ACTIVE
    assert last_audit(app).action == "admin.user_confirmed"


def test_admin_cannot_disable_or_demote_themselves(app, admin):
    uid = user_id(app, "chief.admin@kent.police.uk")
    disabled = post_form(
        admin, f"/admin/users/{uid}", f"/admin/users/{uid}/status", {"status": "disabled"}
    )
    demoted = post_form(
        admin, f"/admin/users/{uid}", f"/admin/users/{uid}/role", {"role": "contributor"}
    )
    assert disabled.status_code == demoted.status_code == 400
    me = load(app, "chief.admin@kent.police.uk")
    assert me.status == UserStatus.ACTIVE and me.role == Role.ADMIN


def test_a_re_enabled_user_can_sign_in_again(app, admin, make_user):
    target = make_user(email="pat.jones@kent.police.uk")
    uid = user_id(app, target.email)
    post_form(admin, f"/admin/users/{uid}", f"/admin/users/{uid}/status", {"status": "disabled"})
    assert Auth(app.test_client()).login(target).status_code == 400
    post_form(admin, f"/admin/users/{uid}", f"/admin/users/{uid}/status", {"status": "active"})
    assert Auth(app.test_client()).login(target).status_code == 303


def test_admin_changes_need_a_csrf_token(app, admin, make_user):
    target = make_user(email="pat.jones@kent.police.uk")
    uid = user_id(app, target.email)
    assert admin.post(f"/admin/users/{uid}/role", data={"role": "admin"}).status_code == 400
    assert load(app, target.email).role == Role.CONTRIBUTOR


@pytest.mark.parametrize("path", ["/admin/users/1", "/admin/audit"])
def test_moderators_cannot_use_admin_pages(app, make_user, path):
    client = app.test_client()
    Auth(client).login(make_user("moderator"))
    assert client.get(path).status_code == 403
    assert client.post("/admin/users/1/role", data={"role": "admin"}).status_code in (400, 403)


def test_unknown_user_is_a_404(admin):
    assert admin.get("/admin/users/999999").status_code == 404


def test_audit_log_shows_events_newest_first(app, admin):
    # Events are named in plain English (auth.login, user.created) since issue 15.
    page = admin.get("/admin/audit").get_data(as_text=True)
    events = page[page.index("<tbody") :]
    assert events.index("Signed in") < events.index("Account created on the command line")


def test_a_user_changes_their_own_name_but_not_their_force(app, member):
    # Their force decides whose adoptions they record and whose contact they are: admins
    # change it.
    page = member.get("/account/profile").get_data(as_text=True)
    response = member.post(
        "/account/profile",
        data={"name": "Alex New", "force": "the met", "csrf_token": csrf_from(page)},
    )
    assert response.status_code == 303
    user = load(app, member.user.email)
    assert user.name == "Alex New"
    with app.app_context():
        assert db.session.get(User, user.id).force.name == "Kent Police"
    assert last_audit(app).action == "account.profile_changed"
    bad = member.post(
        "/account/profile", data={"name": "", "force": "Gotham", "csrf_token": csrf_from(page)}
    )
    assert bad.status_code == 400
    assert "Enter your full name" in bad.get_data(as_text=True)


# Search synonyms


def test_admin_adds_a_synonym_and_searches_use_it_at_once(app, admin, published):
    published(case_study_line(title="Our HeForShe launch", body="A HeForShe launch evening."))
    assert "0 case studies" in admin.get("/library?q=hfs").get_data(as_text=True)
    response = post_form(
        admin, "/admin/synonyms", "/admin/synonyms", {"term": "HFS", "expansion": "heforshe"}
    )
    assert response.status_code == 303
    assert "1 case study" in admin.get("/library?q=hfs").get_data(as_text=True)
    assert last_audit(app).action == "admin.synonym_added"


def test_the_seeded_synonyms_can_be_removed(app, admin, published):
    published(case_study_line(title="Tackling violence against women and girls", body="Our plan."))
    assert "1 case study" in admin.get("/library?q=vawg").get_data(as_text=True)
    page = admin.get("/admin/synonyms").get_data(as_text=True)
    synonym_id = re.search(
        r'/admin/synonyms/(\d+)/delete"[^>]*>\s*<input[^>]*>\s*<button[^>]*>Remove<span[^>]*> vawg',
        page,
    )
    assert synonym_id, "vawg is seeded"
    admin.post(
        f"/admin/synonyms/{synonym_id.group(1)}/delete", data={"csrf_token": csrf_from(page)}
    )
    assert "0 case studies" in admin.get("/library?q=vawg").get_data(as_text=True)


@pytest.mark.parametrize(
    ("term", "expansion", "error_id"),
    [
        ("two words", "x y", "term-error"),
        ("x", "y z", "term-error"),
        ("vawg", "dup", "term-error"),
        ("abc", "", "expansion-error"),
        ("abc", "bell\x07", "expansion-error"),
    ],
)
def test_bad_synonyms_are_refused_next_to_the_field(admin, term, expansion, error_id):
    response = post_form(
        admin, "/admin/synonyms", "/admin/synonyms", {"term": term, "expansion": expansion}
    )
    assert response.status_code == 400
    assert f'id="{error_id}"' in response.get_data(as_text=True)


def test_contributors_cannot_edit_synonyms(member):
    assert member.get("/admin/synonyms").status_code == 403


@pytest.mark.parametrize("query", ["%", "_", "\\"])
def test_admin_user_search_takes_wildcards_literally(admin, query):
    page = admin.get("/admin/users", query_string={"q": query}).get_data(as_text=True)
    assert "0 users matching" in page
