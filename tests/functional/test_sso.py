"""Signing in with a force account (OpenID Connect) against a real provider: oidc-provider on
loopback (tests/idp), as Microsoft Entra ID's multi-tenant endpoints and as a provider of its
own. Every attack the issue names is a test here; the browser's journey is in tests/e2e."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import (
    AuditEvent,
    ExternalIdentity,
    IdentityProvider,
    ProviderKind,
    ProviderTenant,
    Role,
    User,
    UserStatus,
)
from portal.reference import find_force
from tests.conftest import Auth, csrf_from, make_app, signed_in
from tests.oidc import (
    CLIENT_ID,
    CLIENT_SECRET,
    KENT_TENANT,
    MERSEY_TENANT,
    claims_of,
    entra_provider,
    path_of,
    sign_in_at,
    start_idp,
)
from tests.records import outbox

BASE = "http://127.0.0.1:5000"  # the portal's BASE_URL in the tests: the redirect URI's


@pytest.fixture(scope="module")
def idp():
    server = start_idp([BASE])
    yield server
    server.stop()


@pytest.fixture
def app(instance_path, idp):
    """The portal with Entra ID (Kent's tenant mapped to Kent Police; Essex's not) and
    Merseyside's provider of its own; secrets from the instance's config."""
    app = make_app(
        instance_path,
        OIDC_CLIENT_SECRETS={"entra": CLIENT_SECRET, "merseyside": CLIENT_SECRET},
    )
    with app.app_context():
        db.session.add(entra_provider(idp))
        db.session.add(
            IdentityProvider(
                slug="merseyside",
                name="Merseyside Police",
                kind=ProviderKind.OIDC,
                discovery_url=idp.discovery(MERSEY_TENANT),
                client_id=CLIENT_ID,
                force=find_force("Merseyside Police"),
                email_domains="merseyside.police.uk",
            )
        )
        db.session.commit()
    return app


def start(client, slug: str = "entra", next_url: str | None = None):
    page = client.get("/auth/login" + (f"?next={next_url}" if next_url else "")).text
    link = re.search(rf'href="(/auth/sso/{slug}[^"]*)"', page).group(1)
    response = client.get(html.unescape(link))
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return response.location


def sso(client, login: str, *, slug="entra", tenant="Kent Police", next_url=None):
    """Sign in at the provider as `login`; return the portal's answer to the callback."""
    callback = sign_in_at(start(client, slug, next_url), login, tenant)
    return client.get(path_of(callback))


def signed_in_as(client) -> str | None:
    page = client.get("/account")
    if page.status_code != 200:
        return None
    with client.application.app_context():
        emails = db.session.scalars(select(User.email)).all()
    text = page.get_data(as_text=True)
    return next((e for e in emails if e in text), None)


def events(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        found = db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()
        db.session.expunge_all()
        return list(found)


def users(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(User))


def refused(response, text: str = "did not work") -> None:
    assert response.status_code == 400, response.status_code
    assert text in response.get_data(as_text=True)


# Offered only when configured


def test_no_provider_changes_nothing(instance_path):
    client = make_app(instance_path).test_client()
    page = client.get("/auth/login").get_data(as_text=True)
    assert "force account" not in page
    assert "Or sign in with your email" not in page


def test_provider_without_secret_is_not_offered(instance_path, idp):
    app = make_app(instance_path)
    with app.app_context():
        db.session.add(
            IdentityProvider(
                slug="entra",
                name="Entra",
                kind=ProviderKind.ENTRA,
                discovery_url=idp.entra_discovery,
                client_id=CLIENT_ID,
            )
        )
        db.session.commit()
    client = app.test_client()
    assert "force account" not in client.get("/auth/login").get_data(as_text=True)
    assert client.get("/auth/sso/entra").status_code == 404


def test_each_provider_has_its_button(client):
    page = client.get("/auth/login").text
    assert "Sign in with Microsoft Entra ID" in page and "Sign in with Merseyside Police" in page
    for slug in ("nope", "ENTRA", "entra%0a", "x" * 500):
        assert client.get(f"/auth/sso/{slug}").status_code == 404


# The round trip


def test_first_sign_in_creates_a_contributor_in_the_mapped_force(app, client):
    response = sso(client, "alex")
    assert response.status_code == 303 and response.location.endswith("/")
    assert signed_in_as(client) == "alex.morgan@kent.police.uk"
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "alex.morgan@kent.police.uk"))
        assert (user.role, user.status, user.force.name) == (
            Role.CONTRIBUTOR,
            UserStatus.ACTIVE,
            "Kent Police",
        )
        assert user.name == "Alex Morgan" and user.password_hash is None
        identity = db.session.scalar(select(ExternalIdentity))
        assert (identity.user_id, identity.issuer, identity.subject) == (
            user.id,
            f"entra:{KENT_TENANT}",
            claims_of("alex")["oid"],
        )
    assert len(events(app, "auth.sso_account_created")) == 1
    [login] = events(app, "auth.login")
    assert '"method": "sso"' in login.detail and '"provider": ' in login.detail
    [mail] = outbox(app)  # the address's owner hears of the new account
    assert mail["To"] == "alex.morgan@kent.police.uk"
    assert "Kent Police" in mail.get_content() and "If this was not you" in mail.get_content()


def test_signing_in_again_finds_the_same_account(app, client):
    sso(client, "alex")
    before = users(app)
    client.post("/auth/logout", data={"csrf_token": csrf_from(client.get("/account").text)})
    assert signed_in_as(client) is None
    assert sso(client, "alex").status_code == 303
    assert signed_in_as(client) == "alex.morgan@kent.police.uk"
    assert users(app) == before


def test_where_the_person_was_going_is_kept(client):
    response = sso(client, "alex", next_url="/account/profile")
    assert response.location == "/account/profile"


def test_another_openid_provider_puts_its_people_in_its_force(app, client):
    assert sso(client, "cal", slug="merseyside", tenant=None).status_code == 303
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "cal.ward@merseyside.police.uk"))
        assert user.force.name == "Merseyside Police"
        identity = db.session.scalar(select(ExternalIdentity))
        assert identity.issuer.endswith(f"/{MERSEY_TENANT}/v2.0")
        assert identity.subject == claims_of("cal")["sub"]


def test_a_name_with_markup_is_not_taken(app, client):
    assert sso(client, "odd").status_code == 303
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "odd.one@kent.police.uk"))
        assert user.name == "Odd One"


# Attacks, each refused without signing anybody in


def test_a_tenant_not_mapped_is_refused(app, client):
    before = users(app)
    response = sso(client, "bea", tenant="Essex Police")
    refused(response, "cannot sign in to the library yet")
    assert signed_in_as(client) is None and users(app) == before
    assert "tenant_not_mapped" in events(app, "auth.sso_refused")[0].detail


def test_an_issuer_of_another_tenant_is_refused(app, client, idp):
    # Signed by the shared keys, from Kent's issuer, but claiming Essex's tenant: the
    # issuer must be the token's own tenant's.
    idp.next_token(f"tid:{KENT_TENANT[:-1]}b")
    refused(sso(client, "alex"))
    assert signed_in_as(client) is None
    idp.next_token(f"iss:{idp.issuer(MERSEY_TENANT)}")
    refused(sso(client, "alex"))
    assert signed_in_as(client) is None and users(app) == 0


@pytest.mark.parametrize(
    "mutation", ["tamper", "expired", "wrong-key", "alg-none", "nonce", "audience"]
)
def test_a_bad_id_token_is_refused(app, client, idp, mutation):
    before = users(app)
    idp.next_token(mutation)
    refused(sso(client, "alex"))
    assert signed_in_as(client) is None and users(app) == before
    assert events(app, "auth.sso_refused")[0].detail.count("token_invalid") == 1


def test_a_replayed_state_is_refused(app, client):
    callback = sign_in_at(start(client), "alex")
    stolen = client.get_cookie("session").value  # the browser's cookie before the callback
    assert client.get(path_of(callback)).status_code == 303
    replay = app.test_client()
    replay.set_cookie("session", stolen)
    refused(replay.get(path_of(callback)))
    assert signed_in_as(replay) is None
    assert '"reason": "state_replayed"' in events(app, "auth.sso_refused")[0].detail


def test_a_callback_nobody_started_is_refused(client):
    refused(client.get("/auth/sso/callback?code=x&state=y"), "took too long")


def test_a_person_who_says_no_at_the_provider(client):
    start(client)
    refused(client.get("/auth/sso/callback?error=access_denied&state=y"), "did not sign you in")


def test_an_email_claim_of_someone_else_cannot_reach_their_account(app, client, make_user):
    victim = make_user(email="victim@kent.police.uk")
    response = sso(client, "mallory")
    assert response.status_code == 303 and response.location.endswith("/auth/sso/link")
    assert signed_in_as(client) is None
    page = client.get("/auth/sso/link").get_data(as_text=True)
    wrong = client.post(
        "/auth/sso/link", data={"password": "not the password", "csrf_token": csrf_from(page)}
    )
    assert wrong.status_code == 400 and "Your password is not correct" in wrong.text
    assert signed_in_as(client) is None
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ExternalIdentity)) == 0
    assert client.get("/account").status_code != 200  # not signed in as the victim
    assert victim.email


def test_a_changed_email_claim_still_signs_in_to_its_own_account(app, client, idp, make_user):
    make_user(email="victim@kent.police.uk")
    sso(client, "alex")
    client.post("/auth/logout", data={"csrf_token": csrf_from(client.get("/account").text)})
    idp.next_token("email:victim@kent.police.uk")  # the tenant's admin changed alex's email
    assert sso(client, "alex").status_code == 303
    assert signed_in_as(client) == "alex.morgan@kent.police.uk"


def test_an_address_outside_the_police_is_refused(app, client):
    before = users(app)
    refused(sso(client, "outsider"), "must end in")
    assert users(app) == before and signed_in_as(client) is None


def test_a_disabled_account_stays_disabled(app, client):
    sso(client, "alex")
    client.post("/auth/logout", data={"csrf_token": csrf_from(client.get("/account").text)})
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "alex.morgan@kent.police.uk"))
        user.status = UserStatus.DISABLED
        db.session.commit()
    refused(sso(client, "alex"), "disabled")
    assert signed_in_as(client) is None
    assert '"reason": "account_disabled"' in events(app, "auth.sso_refused")[0].detail


def test_disabling_ends_a_session_made_through_a_provider(app, client):
    sso(client, "alex")
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "alex.morgan@kent.police.uk"))
        user.status = UserStatus.DISABLED
        db.session.commit()
    assert signed_in_as(client) is None


# Linking an existing account, after its password


def test_an_existing_account_is_linked_after_its_password(app, client, make_user):
    owner = make_user(email="lin.ker@kent.police.uk")
    assert sso(client, "linker").location.endswith("/auth/sso/link")
    page = client.get("/auth/sso/link").get_data(as_text=True)
    assert "lin.ker@kent.police.uk" in page
    linked = client.post(
        "/auth/sso/link", data={"password": owner.password, "csrf_token": csrf_from(page)}
    )
    assert linked.status_code == 303
    assert signed_in_as(client) == owner.email
    assert len(events(app, "auth.sso_linked")) == 1
    client.post("/auth/logout", data={"csrf_token": csrf_from(client.get("/account").text)})
    assert sso(client, "linker").status_code == 303  # straight in from now on
    assert signed_in_as(client) == owner.email


# Second factor: the provider's MFA counts only when trusted and said


def test_a_moderator_whose_token_says_mfa_goes_straight_in(app, client, make_user):
    make_user("moderator", email="mo.reed@kent.police.uk")
    link_identity(app, "mo.reed@kent.police.uk", "mo.mfa")
    response = sso(client, "mo.mfa", next_url="/moderation")
    assert response.location == "/moderation"
    assert client.get("/moderation").status_code == 200
    assert '"method": "sso+provider_mfa"' in events(app, "auth.login")[0].detail


def test_a_moderator_without_mfa_in_the_token_gives_the_portals_code(app, client, make_user):
    moderator = make_user("moderator", email="mo.reed.pwd@kent.police.uk")
    link_identity(app, moderator.email, "mo.pwd")
    response = sso(client, "mo.pwd", next_url="/moderation")
    assert response.location.endswith("/auth/two-factor")
    assert client.get("/moderation").status_code != 200
    page = client.get("/auth/two-factor").get_data(as_text=True)
    done = client.post(
        "/auth/two-factor", data={"code": moderator.totp(), "csrf_token": csrf_from(page)}
    )
    assert done.location == "/moderation"
    assert client.get("/moderation").status_code == 200
    assert '"method": "sso+totp"' in events(app, "auth.login")[0].detail


def test_mfa_is_not_trusted_unless_the_provider_is(app, client, make_user):
    make_user("moderator", email="mo.reed@kent.police.uk")
    link_identity(app, "mo.reed@kent.police.uk", "mo.mfa")
    with app.app_context():
        db.session.scalar(
            select(IdentityProvider).where(IdentityProvider.slug == "entra")
        ).trust_mfa = False
        db.session.commit()
    assert sso(client, "mo.mfa").location.endswith("/auth/two-factor")


def test_the_configured_acr_counts_as_mfa(app, client, make_user):
    make_user("moderator", email="ari.cole@kent.police.uk")
    link_identity(app, "ari.cole@kent.police.uk", "acr.user")
    assert sso(client, "acr.user").location.endswith("/auth/two-factor")  # acr not configured
    with app.app_context():
        db.session.scalar(
            select(IdentityProvider).where(IdentityProvider.slug == "entra")
        ).mfa_acr = "urn:kent:mfa"
        db.session.commit()
    client.get("/auth/login")
    fresh = app.test_client()
    assert sso(fresh, "acr.user", next_url="/moderation").location == "/moderation"


def test_provider_mfa_stands_for_a_moderator_without_the_portals_own(app, client, make_user):
    moderator = make_user("moderator", email="mo.reed@kent.police.uk", mfa=False)
    link_identity(app, "mo.reed@kent.police.uk", "mo.mfa")
    sso(client, "mo.mfa")
    assert client.get("/moderation").status_code == 200
    # The same account signing in with its password has no second factor: set one up first.
    other = app.test_client()
    assert Auth(other).login(moderator).status_code == 303
    assert other.get("/moderation").location.endswith("/account/two-factor")


def link_identity(app, email: str, login: str) -> None:
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        db.session.add(
            ExternalIdentity(
                user_id=user.id,
                issuer=f"entra:{KENT_TENANT}",
                subject=claims_of(login)["oid"],
            )
        )
        db.session.commit()


# Signing out


def test_signing_out_offers_to_sign_out_at_the_provider(app, client, idp):
    sso(client, "alex")
    response = client.post(
        "/auth/logout", data={"csrf_token": csrf_from(client.get("/account").text)}
    )
    assert response.location.endswith("/auth/signed-out")
    page = client.get("/auth/signed-out").get_data(as_text=True)
    assert "Sign out of Microsoft Entra ID too" in page
    assert f"{idp.url}/organizations/v2.0/logout?client_id={CLIENT_ID}" in page
    assert "post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%3A5000%2Fauth%2Flogin" in page
    assert signed_in_as(client) is None


def test_signing_out_after_a_password_is_as_before(client, member):
    response = member.post(
        "/auth/logout", data={"csrf_token": csrf_from(member.get("/account").text)}
    )
    assert response.location.endswith("/auth/login")


# What the provider's absence does


def test_a_provider_that_does_not_answer_is_said_so(app, client):
    with app.app_context():
        provider = db.session.scalar(
            select(IdentityProvider).where(IdentityProvider.slug == "entra")
        )
        provider.discovery_url = "http://127.0.0.1:9/.well-known/openid-configuration"
        db.session.commit()
    refused(client.get("/auth/sso/entra"), "could not be reached")


def test_an_address_of_another_forces_domain_cannot_make_or_link_an_account(
    app, client, idp, make_user
):
    # A Kent tenant admin sets an account's email claim to an Essex address: whether or not
    # the library knows the address, Kent's tenant may not make or link it.
    make_user(email="chief@essex.police.uk", force="Essex Police")
    before = users(app)
    for address in ("chief@essex.police.uk", "new.person@essex.police.uk"):
        idp.next_token(f"email:{address}")
        refused(sso(client, "alex"), "not one the library accepts from your organisation")
        assert signed_in_as(client) is None
    assert users(app) == before
    assert not events(app, "auth.sso_link_offered")
    assert all("email_not_tenants" in e.detail for e in events(app, "auth.sso_refused"))


def test_an_address_the_provider_says_is_unverified_is_refused(app, client, idp):
    idp.next_token('claims:{"email_verified": false}')
    refused(sso(client, "alex"), "not one the library accepts")
    assert users(app) == 0


@pytest.mark.parametrize(
    "claims",
    [
        {"email": "alex\u0000@kent.police.uk"},
        {"email": "x@evil.example,alex@kent.police.uk"},
        {"email": ["alex@kent.police.uk"], "preferred_username": 7},
        {"oid": "a\u0000b"},
        {"oid": {"nested": True}},
        {"tid": None},
        {"name": "A" * 5000},
        {"amr": "mfa"},
    ],
)
def test_odd_claims_never_give_an_error_page(app, client, idp, claims):
    import json

    idp.next_token("claims:" + json.dumps(claims))
    response = sso(client, "alex")
    assert response.status_code in (303, 400)
    if response.status_code == 303:  # taken, but only in a shape the library accepts
        with app.app_context():
            user = db.session.scalar(select(User))
            assert user.email == "alex.morgan@kent.police.uk" and len(user.name) <= 120


def test_linking_an_account_with_two_factor_needs_its_code(app, client, make_user):
    owner = make_user(email="lin.ker@kent.police.uk", mfa=True)
    sso(client, "linker")
    page = client.get("/auth/sso/link").text
    assert "Code from your authenticator app" in page
    no_code = client.post(
        "/auth/sso/link", data={"password": owner.password, "csrf_token": csrf_from(page)}
    )
    assert no_code.status_code == 400 and "Enter the code" in no_code.text
    wrong = client.post(
        "/auth/sso/link",
        data={"password": owner.password, "code": "000000", "csrf_token": csrf_from(page)},
    )
    assert wrong.status_code == 400 and "Enter a correct code" in wrong.text
    assert signed_in_as(client) is None
    done = client.post(
        "/auth/sso/link",
        data={"password": owner.password, "code": owner.totp(), "csrf_token": csrf_from(page)},
    )
    assert done.status_code == 303 and not done.location.endswith("/auth/two-factor")
    assert signed_in_as(client) == owner.email
    mails = [m for m in outbox(app) if m["To"] == owner.email]
    assert [m["Subject"] for m in mails] == ["A force sign-in was linked to your account"]


def test_trust_taken_back_ends_what_the_providers_mfa_allowed(app, client, make_user):
    make_user("moderator", email="mo.reed@kent.police.uk", mfa=False)
    link_identity(app, "mo.reed@kent.police.uk", "mo.mfa")
    sso(client, "mo.mfa")
    assert client.get("/moderation").status_code == 200
    with app.app_context():
        db.session.scalar(
            select(IdentityProvider).where(IdentityProvider.slug == "entra")
        ).trust_mfa = False
        db.session.commit()
    assert client.get("/moderation").location.endswith("/account/two-factor")


def test_people_see_and_remove_their_linked_sign_ins(app, client, make_user):
    sso(client, "alex")
    page = client.get("/account").text
    assert "Force sign-in" in page and "Microsoft Entra ID, linked" in page
    assert "None: you sign in with your force account" in page
    with app.app_context():
        identity_id = db.session.scalar(select(ExternalIdentity.id))
    other = signed_in(app, make_user())
    token = csrf_from(other.get("/account").text)
    assert (
        other.post(
            f"/account/sign-ins/{identity_id}/remove", data={"csrf_token": token}
        ).status_code
        == 404
    )
    assert client.post(f"/account/sign-ins/{identity_id}/remove").status_code == 400  # no CSRF
    token = csrf_from(client.get("/account").text)
    removed = client.post(f"/account/sign-ins/{identity_id}/remove", data={"csrf_token": token})
    assert removed.status_code == 303
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ExternalIdentity)) == 0
    assert len(events(app, "account.sso_unlinked")) == 1


# Admins configure providers and map tenants


@pytest.fixture
def admin(app, make_user):
    return signed_in(app, make_user("admin", email="chief.admin@kent.police.uk"))


def provider_form(admin, url: str, **fields):
    token = csrf_from(admin.get(url).get_data(as_text=True))
    data = {
        "name": "Police Entra",
        "kind": "entra",
        "discovery_url": "",
        "client_id": "abc-123",
        "force": "",
        "enabled": "y",
        "csrf_token": token,
        **fields,
    }
    return admin.post(url, data={k: v for k, v in data.items() if v is not None})


def test_an_admin_adds_a_provider_checked_against_its_discovery_document(app, admin, idp):
    page = admin.get("/admin/sign-in-providers/new").get_data(as_text=True)
    assert "http://127.0.0.1:5000/auth/sso/callback" in page  # the redirect URI to register
    wrong = provider_form(
        admin,
        "/admin/sign-in-providers/new",
        discovery_url="http://login.example.com/.well-known/openid-configuration",
        client_id="",
    )
    text = wrong.get_data(as_text=True)
    assert wrong.status_code == 400
    assert "starts with https://" in text and "application (client) id" in text
    assert 'value="Police Entra"' in text  # what was typed is kept
    one_tenant = provider_form(
        admin, "/admin/sign-in-providers/new", discovery_url=idp.discovery(KENT_TENANT)
    )
    assert one_tenant.status_code == 400 and "one tenant" in one_tenant.text
    added = provider_form(admin, "/admin/sign-in-providers/new", discovery_url=idp.entra_discovery)
    assert added.status_code == 303
    page = admin.get(added.location).get_data(as_text=True)
    assert "PORTAL_OIDC_SECRET_POLICE_ENTRA" in page and "Not found" in page
    assert events(app, "admin.provider_created")[0].actor_id is not None
    not_a_document = provider_form(
        admin, "/admin/sign-in-providers/new", discovery_url=f"{idp.url}/_test/health"
    )
    assert not_a_document.status_code == 400 and "its document has no issuer" in not_a_document.text
    broken = provider_form(admin, "/admin/sign-in-providers/new", discovery_url="https://[::1/x")
    assert broken.status_code == 400 and "starts with https://" in broken.text


def test_another_provider_needs_its_force_and_email_domains(app, admin, idp):
    url = "/admin/sign-in-providers/new"
    missing = provider_form(
        admin, url, kind="oidc", name="Mersey IdP", discovery_url=idp.discovery(MERSEY_TENANT)
    )
    assert missing.status_code == 400
    assert "Choose the force" in missing.text and "Enter the email domain" in missing.text
    added = provider_form(
        admin,
        url,
        kind="oidc",
        name="Mersey IdP",
        discovery_url=idp.discovery(MERSEY_TENANT),
        force="Merseyside Police",
        email_domains="merseyside.police.uk",
    )
    assert added.status_code == 303
    with app.app_context():
        provider = db.session.scalar(
            select(IdentityProvider).where(IdentityProvider.slug == "mersey-idp")
        )
        assert (provider.force.name, provider.email_domains) == (
            "Merseyside Police",
            "merseyside.police.uk",
        )


def test_an_admin_maps_and_removes_a_tenant(app, admin):
    with app.app_context():
        provider_id = db.session.scalar(
            select(IdentityProvider.id).where(IdentityProvider.slug == "entra")
        )
    url = f"/admin/sign-in-providers/{provider_id}"
    page = admin.get(url).get_data(as_text=True)
    assert KENT_TENANT in page and "Found" in page
    token = csrf_from(page)
    bad = admin.post(
        f"{url}/tenants",
        data={
            "tenant_id": "not-a-guid",
            "tenant_force": "Nowhere",
            "tenant_domains": "gmail.com",
            "csrf_token": token,
        },
    )
    assert bad.status_code == 400
    assert "Enter the tenant id" in bad.text and 'value="not-a-guid"' in bad.text
    assert "gmail.com is not allowed" in bad.text
    essex = KENT_TENANT[:-1] + "b"
    done = admin.post(
        f"{url}/tenants",
        data={
            "tenant_id": essex.upper(),
            "tenant_force": "Essex Police",
            "tenant_domains": "essex.police.uk, ESSEX.pnn.police.uk",
            "csrf_token": token,
        },
    )
    assert done.status_code == 303
    with app.app_context():
        tenant = db.session.scalar(select(ProviderTenant).where(ProviderTenant.tenant_id == essex))
        assert tenant.force.name == "Essex Police"
        assert tenant.email_domains == "essex.police.uk essex.pnn.police.uk"
        tenant_id = tenant.id
    again = admin.post(
        f"{url}/tenants",
        data={
            "tenant_id": essex,
            "tenant_force": "Essex Police",
            "tenant_domains": "essex.police.uk",
            "csrf_token": token,
        },
    )
    assert again.status_code == 400 and "mapped already" in again.text
    removed = admin.post(f"{url}/tenants/{tenant_id}/remove", data={"csrf_token": token})
    assert removed.status_code == 303
    assert [e.action for e in events(app, "admin.tenant_unmapped")] == ["admin.tenant_unmapped"]


def test_an_admin_changes_a_provider_and_the_next_sign_in_uses_it(app, admin, client):
    with app.app_context():
        provider = db.session.scalar(
            select(IdentityProvider).where(IdentityProvider.slug == "entra")
        )
        url, discovery = f"/admin/sign-in-providers/{provider.id}", provider.discovery_url
    turned_off = provider_form(
        admin,
        url,
        name="Microsoft Entra ID",
        discovery_url=discovery,
        enabled=None,
        client_id=CLIENT_ID,
    )
    assert turned_off.status_code == 303
    page = client.get("/auth/login").text
    assert "/auth/sso/entra" not in page
    assert "/auth/sso/merseyside" in page and "Sign in with your force account" in page


def test_provider_pages_are_for_admins_only(app, client, make_user, idp):
    moderator = signed_in(app, make_user("moderator"))
    for path in (
        "/admin/sign-in-providers",
        "/admin/sign-in-providers/new",
        "/admin/sign-in-providers/1",
    ):
        assert moderator.get(path).status_code == 403
        assert client.get(path).status_code == 302  # anonymous: to sign in
    token = csrf_from(moderator.get("/account").text)
    assert (
        moderator.post(
            "/admin/sign-in-providers/1/tenants",
            data={"tenant_id": KENT_TENANT, "tenant_force": "Kent Police", "csrf_token": token},
        ).status_code
        == 403
    )


def test_a_provider_that_hangs_is_given_up_on_in_seconds(app, client):
    # A provider that takes the connection and never answers must not hold a worker for
    # ever: the portal gives up after its timeout (5 s) and says so on the sign-in page.
    import socket
    import time

    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(8)  # the kernel completes each connection; nobody ever answers
    try:
        with app.app_context():
            provider = db.session.scalar(
                select(IdentityProvider).where(IdentityProvider.slug == "entra")
            )
            provider.discovery_url = (
                f"http://127.0.0.1:{hole.getsockname()[1]}/.well-known/openid-configuration"
            )
            db.session.commit()
        started = time.monotonic()
        refused(client.get("/auth/sso/entra"), "could not be reached")
        assert time.monotonic() - started < 20
    finally:
        hole.close()


def test_thirty_first_sign_ins_at_once_make_one_account(app):
    # The same person's thirty tabs (or thirty replays) come back at the same moment: one
    # account and one linked identity, every answer a sign-in or a refusal, never an error.
    from concurrent.futures import ThreadPoolExecutor

    clients = [app.test_client() for _ in range(30)]
    callbacks = [sign_in_at(start(c), "alex") for c in clients]
    with ThreadPoolExecutor(max_workers=30) as pool:
        answers = list(
            pool.map(
                lambda pair: pair[0].get(path_of(pair[1])).status_code,
                zip(clients, callbacks, strict=True),
            )
        )
    assert answers == [303] * 30, answers  # the tabs that lost the race use the account made
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 1
        assert db.session.scalar(select(func.count()).select_from(ExternalIdentity)) == 1


def test_an_account_made_by_a_provider_can_set_a_password_by_reset_link(app, client):
    sso(client, "alex")
    client.post("/auth/logout", data={"csrf_token": csrf_from(client.get("/account").text)})
    token = csrf_from(client.get("/auth/reset").text)
    client.post("/auth/reset", data={"email": "alex.morgan@kent.police.uk", "csrf_token": token})
    message = [m for m in outbox(app) if m["Subject"] == "Reset your password"][-1]
    link = re.search(r"https?://\S+", message.get_content()).group(0)
    page = client.get(path_of(link)).text
    chosen = "a password of my own at last"
    done = client.post(path_of(link), data={"password": chosen, "csrf_token": csrf_from(page)})
    assert done.status_code == 303
    signed = client.post(
        "/auth/login",
        data={
            "email": "alex.morgan@kent.police.uk",
            "password": chosen,
            "csrf_token": csrf_from(client.get("/auth/login").text),
        },
    )
    assert signed.status_code == 303 and signed_in_as(client) == "alex.morgan@kent.police.uk"
