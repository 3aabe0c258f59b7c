"""Signing in with a force account in a real browser, through a real OpenID provider's pages
(oidc-provider, tests/idp): a first sign-in, a moderator whose token carries MFA and one
whose token does not, linking an existing account, and signing out at both ends. axe-core
checks every portal page on the way; the provider's own pages are not ours to check."""

from __future__ import annotations

import pyotp
import pytest
from playwright.sync_api import expect

from portal.accounts import create_user
from portal.auth import services
from portal.cli import init_db
from portal.extensions import db
from portal.models import ExternalIdentity, Role
from tests.conftest import SERVER, _drop_database, _fresh_database, make_app, served
from tests.oidc import CLIENT_SECRET, KENT_TENANT, PASSWORD, claims_of, entra_provider, start_idp

from .conftest import assert_accessible, settle, track, watch

LOCAL_PASSWORD = "a long local password for tests"


def _with_totp(email: str, role: Role) -> str:
    user = create_user(email, "Mo Reed", "Kent Police", role, LOCAL_PASSWORD)
    secret = pyotp.random_base32()
    user.totp_pending_secret = secret
    services.enable_mfa(user, LOCAL_PASSWORD, pyotp.TOTP(secret).now())
    user.totp_last_step = None
    db.session.commit()
    return secret


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    """A portal served on loopback, its BASE_URL its own address (the redirect URI), with
    Entra ID (Kent's tenant mapped) and a provider that trusts the tenant's MFA."""
    # On the PostgreSQL pass, a database of its own: the run's is the live app's demo data.
    database = _fresh_database(SERVER) if SERVER else None
    app = make_app(
        tmp_path_factory.mktemp("sso-instance"),
        OIDC_CLIENT_SECRETS={"entra": CLIENT_SECRET},
        **({"DATABASE_URL": database} if database else {}),
    )
    with served(app) as address:
        app.config["BASE_URL"] = address
        idp = start_idp([address])
        secrets = {}
        with app.app_context():
            init_db()
            db.session.add(entra_provider(idp))
            for login, email in (
                ("mo.mfa", "mo.reed@kent.police.uk"),
                ("mo.pwd", "mo.reed.pwd@kent.police.uk"),
            ):
                secrets[login] = _with_totp(email, Role.MODERATOR)
                user_id = services.find_user_by_email(email).id
                db.session.add(
                    ExternalIdentity(
                        user_id=user_id,
                        issuer=f"entra:{KENT_TENANT}",
                        subject=claims_of(login)["oid"],
                    )
                )
            create_user("lin.ker@kent.police.uk", "Lin Ker", "Kent Police", Role.CONTRIBUTOR,
                        LOCAL_PASSWORD)  # fmt: skip
            db.session.commit()
            db.session.remove()
        yield app, address, secrets
        idp.stop()
        with app.app_context():
            db.engine.dispose()
    if database:
        _drop_database(SERVER, database)


@pytest.fixture
def person(browser):
    """A fresh browser (no session at the portal or the provider), watched for errors."""
    context = browser.new_context()
    page = context.new_page()
    track(page)
    problems = watch(page)
    yield page
    context.close()
    assert not problems, f"browser errors: {problems}"


def at_the_provider(page, login: str) -> None:
    """Pick the organisation and sign in on the provider's own page, by keyboard."""
    expect(page.get_by_role("heading", level=1)).to_have_text("Pick your organisation")
    page.get_by_role("link", name="Kent Police").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to Kent Police")
    page.get_by_label("User name").fill(login)
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")


def press_sso_button(page) -> None:
    button = page.get_by_role("button", name="Sign in with your force account")
    button.focus()
    page.keyboard.press("Enter")


def test_a_first_sign_in_lands_signed_in_in_the_mapped_force(portal, person):
    _, address, _ = portal
    person.goto(address + "/auth/login")
    settle(person)
    assert_accessible(person)
    press_sso_button(person)
    at_the_provider(person, "alex")
    person.wait_for_url(address + "/")
    settle(person)
    expect(person.get_by_role("button", name="Sign out")).to_have_count(1)
    assert_accessible(person)
    person.goto(address + "/account")
    expect(person.get_by_text("alex.morgan@kent.police.uk")).to_be_visible()
    expect(person.get_by_text("Kent Police").first).to_be_visible()
    assert_accessible(person)

    # Signing out offers to sign out at the provider too, and that comes back here.
    person.get_by_role("button", name="Sign out").click()
    expect(person.get_by_role("heading", level=1)).to_have_text(
        "You have signed out of the library"
    )
    settle(person)
    assert_accessible(person)
    person.get_by_role("button", name="Sign out of Microsoft Entra ID too").click()
    person.locator("button[autofocus], button[type=submit]").first.click()  # the provider asks
    person.wait_for_url(address + "/auth/login")
    settle(person)
    assert_accessible(person)

    # Signed out there too: the next sign-in asks for the provider's password again.
    press_sso_button(person)
    expect(person.get_by_role("heading", level=1)).to_have_text("Pick your organisation")


def test_a_moderator_whose_token_carries_mfa_goes_straight_to_the_queue(portal, person):
    _, address, _ = portal
    person.goto(address + "/moderation")
    settle(person)
    assert "/auth/login" in person.url
    press_sso_button(person)
    at_the_provider(person, "mo.mfa")
    person.wait_for_url(address + "/moderation")
    settle(person)
    expect(person.get_by_role("heading", level=1)).to_contain_text("Moderation")
    assert_accessible(person)


def test_a_moderator_whose_token_does_not_is_asked_for_the_portals_code(portal, person):
    _, address, secrets = portal
    person.goto(address + "/moderation")
    settle(person)
    press_sso_button(person)
    at_the_provider(person, "mo.pwd")
    person.wait_for_url(address + "/auth/two-factor")
    settle(person)
    assert_accessible(person)
    person.get_by_label("Enter your security code").fill(pyotp.TOTP(secrets["mo.pwd"]).now())
    person.keyboard.press("Enter")
    person.wait_for_url(address + "/moderation")
    settle(person)
    assert_accessible(person)


def test_an_existing_account_is_linked_with_its_password(portal, person):
    _, address, _ = portal
    person.goto(address + "/auth/login")
    settle(person)
    press_sso_button(person)
    at_the_provider(person, "linker")
    person.wait_for_url(address + "/auth/sso/link")
    settle(person)
    expect(person.get_by_role("heading", level=1)).to_have_text(
        "Link your force sign-in to your account"
    )
    assert_accessible(person)
    person.get_by_label("Password of your library account").fill("wrong password")
    person.get_by_role("button", name="Link and sign in").click()
    settle(person)
    expect(person.get_by_text("Your password is not correct").first).to_be_visible()
    assert_accessible(person)
    person.get_by_label("Password of your library account").fill(LOCAL_PASSWORD)
    person.get_by_role("button", name="Link and sign in").click()
    person.wait_for_url(address + "/")
    expect(person.get_by_text("sign-in is now linked to this account")).to_be_visible()
    assert_accessible(person)


@pytest.mark.parametrize("width", [320, 1280])
def test_the_sign_in_page_with_a_provider_fits_and_works_without_javascript(portal, browser, width):
    _, address, _ = portal
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": width, "height": 900}
    )
    page = context.new_page()
    try:
        page.goto(address + "/auth/login")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.get_by_role("button", name="Sign in with your force account").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Pick your organisation")
    finally:
        context.close()
