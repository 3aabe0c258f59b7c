"""Single sign-on with OpenID Connect: the providers, the round trip to one, and who came back.

The round trip is Authlib's Flask client: the authorization code flow with PKCE (S256),
`state` and `nonce`, the ID token's signature checked against the provider's JWKS and its
issuer, audience, expiry and nonce checked (leeway one minute). On top of that, here:

- Microsoft Entra ID is one multi-tenant registration: its discovery document names the
  issuer "https://login.microsoftonline.com/{tenantid}/v2.0", so a token's `iss` must be
  that with the token's own `tid`, and the tenant must be mapped to a force by an admin.
- A `state` is used once: its hash is written before the code is exchanged, so a replayed
  callback is refused even with a copy of the browser's old cookie.
- A person is found by what the provider never changes (issuer + subject; for Entra ID the
  tenant and object id), never by the email claim, which a tenant's admin can set: an email
  that matches an existing account only offers to link, after that account's password.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth
from flask import Flask, current_app, session
from joserfc.errors import JoseError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from .. import audit
from ..core.errors import FieldErrors
from ..core.text import is_clean_text, looks_like_email
from ..extensions import db
from ..models import (
    ExternalIdentity,
    Force,
    IdentityProvider,
    ProviderKind,
    ProviderTenant,
    Role,
    SignInState,
    User,
    UserStatus,
    utcnow,
)
from . import services

ENTRA_DISCOVERY = (
    "https://login.microsoftonline.com/organizations/v2.0/.well-known/openid-configuration"
)
LOOPBACK = ("127.0.0.1", "localhost", "::1")
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
SCOPE = "openid email profile"
TIMEOUT = 5  # seconds for any call to a provider: discovery, keys, the code's exchange
DISCOVERY_MAX_BYTES = 256 * 1024  # a discovery document is a few KB
LEEWAY = 60  # seconds of clock difference allowed on exp, iat and auth_time
PENDING = "sso_pending"  # the session's note of a sign-in on its way to a provider
LINKING = "sso_link"  # ... of a provider identity waiting for an account's password
PENDING_MINUTES = 10
STATES_KEPT = timedelta(days=1)  # a used state is remembered longer than any is valid


class SignInRefused(Exception):
    """The provider's answer cannot sign anybody in; `message` is for the person."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(reason)
        self.reason, self.message = reason, message


TRY_AGAIN = (
    "Signing in with your force account did not work. Try again, or sign in with your password"
)


# Providers and their secrets


def secret_variable(slug: str) -> str:
    """The environment variable that holds a provider's client secret."""
    return "PORTAL_OIDC_SECRET_" + slug.upper().replace("-", "_")


def client_secret(provider: IdentityProvider) -> str | None:
    """The provider's client secret: from the environment, else the instance's config
    (OIDC_CLIENT_SECRETS = {"slug": "..."} in instance/config.py). Never stored or shown."""
    configured = current_app.config.get("OIDC_CLIENT_SECRETS") or {}
    return os.environ.get(secret_variable(provider.slug)) or configured.get(provider.slug) or None


def usable_providers() -> list[IdentityProvider]:
    """Enabled providers with a secret: the sign-in page offers these."""
    providers = db.session.scalars(
        select(IdentityProvider).where(IdentityProvider.enabled).order_by(IdentityProvider.name)
    )
    return [p for p in providers if client_secret(p)]


def find_provider(slug: str) -> IdentityProvider | None:
    if not isinstance(slug, str) or not SLUG.fullmatch(slug):
        return None
    return db.session.scalar(select(IdentityProvider).where(IdentityProvider.slug == slug))


def _oauth() -> OAuth:
    return current_app.extensions["portal_sso"]


def client(provider: IdentityProvider) -> Any:
    """Authlib's client for the provider as configured now (a change makes a new one)."""
    name = f"p{provider.id}_{int(provider.updated_at.timestamp())}"
    oauth = _oauth()
    existing = oauth._clients.get(name)  # noqa: SLF001 - Authlib's registry has no getter
    if existing is not None:
        return existing
    return oauth.register(
        name=name,
        client_id=provider.client_id,
        client_secret=client_secret(provider),
        server_metadata_url=provider.discovery_url,
        # default_timeout: Authlib's session option ("timeout" would be kept as metadata).
        client_kwargs={"scope": SCOPE, "code_challenge_method": "S256", "default_timeout": TIMEOUT},
    )


def metadata(provider: IdentityProvider) -> dict[str, Any]:
    """The provider's discovery document (fetched once per client)."""
    return client(provider).load_server_metadata()


def web_address_problem(url: str) -> str | None:
    """Why `url` may not be a provider's address: https only (plain http on this machine
    alone, for trying a provider out), or None."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "it is not a web address"
    if not host:
        return "it is not a full web address"
    if parts.scheme == "https" or (parts.scheme == "http" and host in LOOPBACK):
        return None
    return "it does not start with https://"


def fetch_discovery(url: str) -> dict[str, Any]:
    """Read a discovery document for the admin's form; raise ValueError saying what is wrong.

    No redirects, 5 seconds, 256 KB at most; the issuer and every endpoint must be https
    (the client secret is sent to the token endpoint)."""
    try:
        with requests.get(url, timeout=TIMEOUT, allow_redirects=False, stream=True) as answer:
            if answer.status_code != 200:
                raise ValueError(f"it answered {answer.status_code}, not a discovery document")
            body = answer.raw.read(DISCOVERY_MAX_BYTES + 1, decode_content=True)
    except requests.RequestException as error:
        raise ValueError(f"the portal could not reach it ({type(error).__name__})") from None
    if len(body) > DISCOVERY_MAX_BYTES:
        raise ValueError("its answer is far too large for a discovery document")
    try:
        document = json.loads(body)
    except ValueError:
        raise ValueError("it did not answer with JSON") from None
    needed = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
    missing = [
        k for k in needed if not isinstance(document, dict) or not isinstance(document.get(k), str)
    ]
    if missing:
        raise ValueError("its document has no " + ", ".join(missing))
    for name in needed:
        problem = web_address_problem(document[name].replace("{tenantid}", "tenant"))
        if problem:
            raise ValueError(f"its {name} is refused: {problem}")
    return document


# The round trip


def begin(provider: IdentityProvider, redirect_uri: str, next_url: str | None):
    """Send the browser to the provider (a new state, nonce and PKCE verifier)."""
    session.pop(LINKING, None)
    session[PENDING] = {"provider": provider.id, "next": next_url, "at": int(time.time())}
    try:
        return client(provider).authorize_redirect(redirect_uri)
    except (requests.RequestException, AuthlibBaseError, ValueError, RuntimeError) as error:
        current_app.logger.warning("single sign-on: %s unreachable: %s", provider.slug, error)
        raise SignInRefused(
            "provider_unreachable",
            f"{provider.name} could not be reached. Try again later, or sign in with your password",
        ) from None


@dataclass(frozen=True)
class Proof:
    """Who the provider says came back, after every check."""

    provider_id: int
    issuer: str  # "entra:<tenant id>", or the issuer's URL
    subject: str
    email: str
    name: str
    force_id: int
    mfa: bool  # the provider's multi-factor sign-in, trusted for this provider
    # The email is one this tenant (or provider) may make or link an account with: its
    # domain is one of the mapping's, and the provider did not say it is unverified.
    email_ok: bool = False


def pending_provider() -> tuple[IdentityProvider, str | None] | None:
    """The provider this browser went to sign in with (for 10 minutes), and where to go next."""
    pending = session.get(PENDING)
    if not isinstance(pending, dict) or time.time() - pending.get("at", 0) > PENDING_MINUTES * 60:
        return None
    provider_id = pending.get("provider")
    if not isinstance(provider_id, int):
        return None
    provider = db.session.get(IdentityProvider, provider_id)
    if provider is None or not provider.enabled:
        return None
    return provider, pending.get("next")


def _claim_state(state: str) -> None:
    """Refuse a state seen before; remember this one (a day, then it is pruned)."""
    digest = hashlib.sha256(state.encode()).hexdigest()
    db.session.execute(delete(SignInState).where(SignInState.used_at < utcnow() - STATES_KEPT))
    db.session.add(SignInState(state_hash=digest))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise SignInRefused("state_replayed", TRY_AGAIN) from None


def finish(provider: IdentityProvider, args: dict[str, str]) -> Proof:
    """Check the provider's answer on the callback; return who signed in, or refuse."""
    session.pop(PENDING, None)
    if args.get("error"):
        raise SignInRefused("provider_error", _provider_error(provider, args["error"]))
    state = args.get("state") or ""
    if not state or len(state) > 200 or not args.get("code"):
        raise SignInRefused("bad_callback", TRY_AGAIN)
    _claim_state(state)
    entra = provider.kind == ProviderKind.ENTRA
    oauth_client = client(provider)
    try:
        template = oauth_client.load_server_metadata()["issuer"]
        options = {
            "iss": {"essential": True, "validate": _issuer_check(provider, template)},
            "aud": {"essential": True, "value": provider.client_id},
        }
        token = oauth_client.authorize_access_token(claims_options=options, leeway=LEEWAY)
    except SignInRefused:
        raise
    except requests.RequestException as error:
        current_app.logger.warning("single sign-on: %s unreachable: %s", provider.slug, error)
        raise SignInRefused(
            "provider_unreachable",
            f"{provider.name} could not be reached. Try again later, or sign in with your password",
        ) from None
    except (AuthlibBaseError, JoseError, ValueError, KeyError, TypeError, RuntimeError) as error:
        raise SignInRefused(f"token_invalid:{type(error).__name__}", TRY_AGAIN) from None
    claims = token.get("userinfo")
    if not claims:  # no ID token came back: nothing says who this is
        raise SignInRefused("token_invalid:no_id_token", TRY_AGAIN)
    return _proof(provider, dict(claims), entra)


def _provider_error(provider: IdentityProvider, error: str) -> str:
    if error == "access_denied":
        return f"{provider.name} did not sign you in. Try again, or sign in with your password"
    return TRY_AGAIN


def _issuer_check(provider: IdentityProvider, template: str):
    def check(claims: Any, value: Any) -> bool:
        if provider.kind != ProviderKind.ENTRA:
            return value == template
        tid = claims.get("tid")
        return (
            isinstance(tid, str)
            and bool(GUID.fullmatch(tid))
            and "{tenantid}" in template
            and value == template.replace("{tenantid}", tid)
        )

    return check


def _text_claim(claims: dict[str, Any], name: str, limit: int = 254) -> str:
    """A claim as one line of clean text, or "" (missing, not text, too long, controls)."""
    value = claims.get(name)
    if not isinstance(value, str) or len(value) > limit:
        return ""
    return value.strip() if is_clean_text(value, multiline=False) and "\t" not in value else ""


def domains_of(text: str) -> list[str]:
    """The email domains an admin wrote for a tenant or provider (space or comma separated)."""
    return [d for d in re.split(r"[\s,]+", text.lower()) if d]


def _in_domains(email: str, domains: list[str]) -> bool:
    domain = email.rpartition("@")[2]
    return any(domain == d or domain.endswith("." + d) for d in domains)


def _proof(provider: IdentityProvider, claims: dict[str, Any], entra: bool) -> Proof:
    if entra:
        tid, oid = _text_claim(claims, "tid"), _text_claim(claims, "oid")
        if not (GUID.fullmatch(tid) and oid):
            raise SignInRefused("claims_missing", TRY_AGAIN)
        tenant = db.session.scalar(
            select(ProviderTenant).where(
                ProviderTenant.provider_id == provider.id, ProviderTenant.tenant_id == tid
            )
        )
        if tenant is None:
            raise SignInRefused(
                f"tenant_not_mapped:{tid}",
                "Your organisation's accounts cannot sign in to the library yet. "
                "Ask your force's HeForShe lead to contact the portal's admins, "
                "or sign in with your password",
            )
        issuer, subject, force_id = f"entra:{tid}", oid, tenant.force_id
        domains = domains_of(tenant.email_domains)
    else:
        subject = _text_claim(claims, "sub", 255)
        if not subject or provider.force_id is None:
            raise SignInRefused("claims_missing", TRY_AGAIN)
        issuer, force_id = _text_claim(claims, "iss", 300), provider.force_id
        domains = domains_of(provider.email_domains)
    email = _text_claim(claims, "email") or _text_claim(claims, "preferred_username")
    email = services.normalise_email(email)
    email = email if looks_like_email(email) else ""
    raw_amr = claims.get("amr")
    amr: list[Any] = raw_amr if isinstance(raw_amr, list) else []
    mfa = provider.trust_mfa and (
        "mfa" in amr or (bool(provider.mfa_acr) and claims.get("acr") == provider.mfa_acr)
    )
    return Proof(
        provider_id=provider.id,
        issuer=issuer,
        subject=subject,
        email=email,
        name=_text_claim(claims, "name", 120),
        force_id=force_id,
        mfa=bool(mfa),
        email_ok=bool(email)
        and _in_domains(email, domains)
        and claims.get("email_verified") is not False,
    )


# Who it is


@dataclass(frozen=True)
class Outcome:
    user: User | None  # signed in (or on to the second factor) as this account
    link_to: User | None = None  # or: an account with the same email, to link by password


def account_for(proof: Proof) -> Outcome:
    """Find the account of a provider identity, create one, or offer to link one."""
    identity = _identity(proof)
    if identity is not None:
        user = identity.user
        _refuse_inactive(user, proof)
        identity.last_used_at = utcnow()
        db.session.commit()
        return Outcome(user)
    if not proof.email or services.email_domain_problem(proof.email):
        audit.record("auth.sso_refused", detail={**_about(proof), "reason": "email_domain"})
        db.session.commit()
        domains = " or ".join(current_app.config["ALLOWED_EMAIL_DOMAINS"])
        raise SignInRefused(
            "email_domain",
            f"Your force account's email address must end in {domains} to use the library",
        )
    if not proof.email_ok:
        # Not an address of this tenant's own domains (or one it says is unverified): a
        # tenant's admin can set any email claim, and must not reach another force's people.
        audit.record("auth.sso_refused", detail={**_about(proof), "reason": "email_not_tenants"})
        db.session.commit()
        raise SignInRefused(
            "email_not_tenants",
            f"Your force account's email address, {proof.email}, is not one the library "
            "accepts from your organisation. Ask the portal's admins, or sign in with "
            "your password",
        )
    existing = services.find_user_by_email(proof.email)
    if existing is not None:
        _refuse_inactive(existing, proof)
        audit.record("auth.sso_link_offered", target=existing, detail=_about(proof))
        db.session.commit()
        return Outcome(None, link_to=existing)
    created = _create(proof)
    if created is None:  # the same person's other tab made it a moment ago: use that one
        identity = _identity(proof)
        if identity is None:
            raise SignInRefused("raced", TRY_AGAIN)
        _refuse_inactive(identity.user, proof)
        return Outcome(identity.user)
    return Outcome(created)


def _identity(proof: Proof) -> ExternalIdentity | None:
    return db.session.scalar(
        select(ExternalIdentity).where(
            ExternalIdentity.issuer == proof.issuer, ExternalIdentity.subject == proof.subject
        )
    )


def _about(proof: Proof) -> dict[str, Any]:
    return {"provider": proof.provider_id, "issuer": proof.issuer, "subject": proof.subject[:80]}


def _refuse_inactive(user: User, proof: Proof) -> None:
    if user.status == UserStatus.ACTIVE:
        return
    audit.record(
        "auth.sso_refused",
        target=user,  # not its actor: whoever signed in at the provider may not be its owner
        detail={**_about(proof), "reason": f"account_{user.status.value}"},
    )
    db.session.commit()
    if user.status == UserStatus.DISABLED:
        raise SignInRefused(
            "account_disabled", "This account has been disabled. Contact your portal admin"
        )
    raise SignInRefused(
        "account_pending",
        "An account with your email address is waiting to be confirmed. Use the link we "
        "emailed, or reset its password, then sign in with your force account",
    )


def _display_name(proof: Proof) -> str:
    if proof.name and not services.name_problem(proof.name):
        return proof.name
    local = proof.email.partition("@")[0]
    words = [w.capitalize() for w in re.split(r"[._-]+", local) if w.isalpha()]
    name = " ".join(words)[:120]
    return name if name and is_clean_text(name, multiline=False) else "Colleague"


def _create(proof: Proof) -> User | None:
    """A contributor account in the mapped force, active at once (the provider vouched);
    None when another request made the account or identity first."""
    force = db.session.get(Force, proof.force_id)
    user = User(
        email=proof.email,
        name=_display_name(proof),
        force=force,
        role=Role.CONTRIBUTOR,
        status=UserStatus.ACTIVE,
        password_hash=None,
        confirmed_at=utcnow(),
    )
    db.session.add(user)
    try:
        db.session.flush()
        db.session.add(
            ExternalIdentity(
                user=user,
                provider_id=proof.provider_id,
                issuer=proof.issuer,
                subject=proof.subject,
                last_used_at=utcnow(),
            )
        )
        audit.record(
            "auth.sso_account_created",
            actor=user,
            target=user,
            detail={**_about(proof), "force": force.slug if force else None},
        )
        services.mail_user(
            user,
            "sso_account_created",
            "Your HeForShe Practice Library account",
            provider=db.session.get(IdentityProvider, proof.provider_id),
        )
        db.session.commit()
    except IntegrityError:
        # The same person's other tab (or a registration of the address) was first.
        db.session.rollback()
        return None
    return user


def remember_link(proof: Proof, user: User, next_url: str | None) -> None:
    """Keep, in the (signed) session, the identity waiting to be linked to `user`."""
    session[LINKING] = {
        **asdict(proof),
        "user": user.id,
        "next": next_url,
        "at": int(time.time()),
    }


def pending_link() -> tuple[Proof, User, str | None] | None:
    raw = session.get(LINKING)
    if not isinstance(raw, dict) or time.time() - raw.get("at", 0) > PENDING_MINUTES * 60:
        return None
    user_id, provider_id = raw.get("user"), raw.get("provider_id")
    user = db.session.get(User, user_id) if isinstance(user_id, int) else None
    provider = (
        db.session.get(IdentityProvider, provider_id) if isinstance(provider_id, int) else None
    )
    if user is None or provider is None or not provider.enabled:
        return None
    fields = {k: raw[k] for k in Proof.__dataclass_fields__ if k in raw}
    try:
        return Proof(**fields), user, raw.get("next")
    except TypeError:
        return None


WRONG_CODE = "Enter a correct code from your authenticator app, or a recovery code"


def link(proof: Proof, user: User, password: str, code: str = "") -> None:
    """Link the identity to `user` once its password is given, and its second factor when
    it has one (FieldErrors otherwise): linking must not be a way around either."""
    _refuse_inactive(user, proof)
    services.check_own_password(user, password, "password", "link_sign_in")
    if user.mfa_enabled:
        if not code.strip():
            raise FieldErrors({"code": "Enter the code from your authenticator app"})
        try:
            accepted = services.verify_second_factor(user, code)
        except services.SecondFactorLocked:
            raise FieldErrors(
                {"code": "Signing in is paused for an hour after too many wrong codes"}
            ) from None
        if not accepted:
            raise FieldErrors({"code": WRONG_CODE})
    provider = db.session.get(IdentityProvider, proof.provider_id)
    db.session.add(
        ExternalIdentity(
            user_id=user.id,
            provider_id=proof.provider_id,
            issuer=proof.issuer,
            subject=proof.subject,
            last_used_at=utcnow(),
        )
    )
    audit.record("auth.sso_linked", actor=user, target=user, detail=_about(proof))
    services.mail_user(
        user, "sso_linked", "A force sign-in was linked to your account", provider=provider
    )
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise SignInRefused("raced", TRY_AGAIN) from None
    session.pop(LINKING, None)


def refusal(provider: IdentityProvider | None, error: SignInRefused) -> None:
    """Audit a refused sign-in (the account-level refusals audit themselves)."""
    if error.reason.startswith(("account_", "email_domain")):
        return
    audit.record(
        "auth.sso_refused",
        detail={"provider": provider.id if provider else None, "reason": error.reason[:80]},
    )
    db.session.commit()


# Signing out at the provider too


def logout_url(provider: IdentityProvider, post_logout_redirect_uri: str) -> str | None:
    """The provider's RP-initiated logout address, when its discovery document has one."""
    try:
        endpoint = metadata(provider).get("end_session_endpoint")
    except (requests.RequestException, AuthlibBaseError, ValueError, RuntimeError):
        return None
    if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")):
        return None
    query = urlencode(
        {"client_id": provider.client_id, "post_logout_redirect_uri": post_logout_redirect_uri}
    )
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"


def register(app: Flask) -> None:
    """One Authlib registry per app; providers are registered on first use."""
    app.extensions["portal_sso"] = OAuth(app)


# A person's own linked sign-ins


def identities_of(user: User) -> list[ExternalIdentity]:
    return list(
        db.session.scalars(
            select(ExternalIdentity)
            .where(ExternalIdentity.user_id == user.id)
            .order_by(ExternalIdentity.created_at)
        )
    )


def unlink(user: User, identity_id: int) -> ExternalIdentity | None:
    """Remove one of `user`'s own linked sign-ins (None when it is not theirs)."""
    identity = db.session.get(ExternalIdentity, identity_id)
    if identity is None or identity.user_id != user.id:
        return None
    audit.record(
        "account.sso_unlinked",
        actor=user,
        target=user,
        detail={"provider": identity.provider_id, "issuer": identity.issuer},
    )
    db.session.delete(identity)
    db.session.commit()
    return identity
