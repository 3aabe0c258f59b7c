"""Sign-in providers (OpenID Connect) and the Entra ID tenants mapped to forces.

A provider's client secret is never typed here: it lives in the environment
(PORTAL_OIDC_SECRET_<SLUG>) or the instance's config, and the page only says whether the
portal can find it. Each change is checked against the provider's discovery document
before it is saved, and audited.
"""

from __future__ import annotations

import re

from flask import current_app
from sqlalchemy import select

from .. import audit
from ..auth import services, sso
from ..auth.services import resolve_force
from ..core.errors import FieldErrors
from ..core.text import is_clean_text
from ..extensions import db
from ..models import IdentityProvider, ProviderKind, ProviderTenant, User


def providers() -> list[IdentityProvider]:
    return list(db.session.scalars(select(IdentityProvider).order_by(IdentityProvider.name)))


def _slug_for(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40].strip("-")
    return slug or "provider"


def _url_problem(url: str) -> str | None:
    if not url:
        return "Enter the provider's discovery address"
    if len(url) > 500 or not is_clean_text(url, multiline=False) or " " in url:
        return "Enter a web address of 500 characters or fewer, without spaces"
    if sso.web_address_problem(url):
        return "Enter a full web address that starts with https://"
    return None


DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


def domains_problem(text: str) -> str | None:
    """Why the email domains an admin wrote cannot be used, or None."""
    domains = sso.domains_of(text)
    if not domains:
        return "Enter the email domain its people's addresses end in, like kent.police.uk"
    if len(text) > 500 or len(domains) > 20:
        return "Enter 20 domains at most, in 500 characters"
    for domain in domains:
        if not DOMAIN.fullmatch(domain):
            return f"{domain[:60]} is not a domain: enter one like kent.police.uk"
        if services.email_domain_problem("someone@" + domain):
            allowed = " or ".join(current_app.config["ALLOWED_EMAIL_DOMAINS"])
            return f"{domain[:60]} is not allowed: the library's addresses end in {allowed}"
    return None


def save(
    admin: User,
    provider: IdentityProvider | None,
    *,
    name: str,
    kind: str,
    discovery_url: str,
    client_id: str,
    force_name: str,
    email_domains: str,
    trust_mfa: bool,
    mfa_acr: str,
    enabled: bool,
) -> IdentityProvider:
    """Create or change a provider after checking every field and its discovery document."""
    name, discovery_url, client_id = name.strip(), discovery_url.strip(), client_id.strip()
    mfa_acr = mfa_acr.strip()
    errors: dict[str, str] = {}
    if not name or len(name) > 80 or not is_clean_text(name, multiline=False):
        errors["name"] = "Enter a name of 80 characters or fewer, like Microsoft Entra ID"
    try:
        chosen = ProviderKind(kind)
    except ValueError:
        errors["kind"] = "Choose the kind of provider"
        chosen = ProviderKind.OIDC
    problem = _url_problem(discovery_url)
    if problem:
        errors["discovery_url"] = problem
    if not client_id or len(client_id) > 200 or not is_clean_text(client_id, multiline=False):
        errors["client_id"] = "Enter the application (client) id the provider gave the portal"
    force = None
    if chosen == ProviderKind.OIDC:
        try:
            force = resolve_force(force_name)
        except FieldErrors:
            errors["force"] = "Choose the force whose people sign in with this provider"
        problem = domains_problem(email_domains)
        if problem:
            errors["email_domains"] = problem
    if len(mfa_acr) > 200 or not is_clean_text(mfa_acr, multiline=False):
        errors["mfa_acr"] = "Enter the acr value in 200 characters or fewer"
    if "discovery_url" not in errors:
        try:
            document = sso.fetch_discovery(discovery_url)
        except ValueError as error:
            errors["discovery_url"] = f"That address did not work: {error}"
        else:
            templated = "{tenantid}" in document["issuer"]
            if chosen == ProviderKind.ENTRA and not templated:
                errors["discovery_url"] = (
                    "That is one tenant's address. For Entra ID use the multi-tenant one, "
                    "ending /organizations/v2.0/.well-known/openid-configuration"
                )
            elif chosen == ProviderKind.OIDC and templated:
                errors["kind"] = "That address is Entra ID's multi-tenant one: choose Entra ID"
    if errors:
        raise FieldErrors(errors)
    creating = provider is None
    if provider is None:
        slug, number = _slug_for(name), 1
        while sso.find_provider(slug) is not None:
            number += 1
            slug = f"{_slug_for(name)[:36]}-{number}"
        provider = IdentityProvider(slug=slug)
        db.session.add(provider)
    provider.name, provider.kind, provider.discovery_url = name, chosen, discovery_url
    provider.client_id, provider.force = client_id, force
    provider.email_domains = " ".join(sso.domains_of(email_domains)) if force else ""
    provider.trust_mfa, provider.mfa_acr, provider.enabled = trust_mfa, mfa_acr, enabled
    db.session.flush()
    audit.record(
        "admin.provider_created" if creating else "admin.provider_changed",
        actor=admin,
        target=provider,
        detail={
            "slug": provider.slug,
            "kind": chosen.value,
            "enabled": enabled,
            "trust_mfa": trust_mfa,
            "force": force.slug if force else None,
        },
    )
    db.session.commit()
    return provider


TENANT_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def map_tenant(
    admin: User, provider: IdentityProvider, tenant_id: str, force_name: str, email_domains: str
) -> None:
    """Allow an Entra ID tenant to sign in, its people in `force_name`'s force, with
    addresses of `email_domains` only."""
    tenant_id = tenant_id.strip().lower()
    errors: dict[str, str] = {}
    if not TENANT_GUID.fullmatch(tenant_id):
        errors["tenant_id"] = (
            "Enter the tenant id as Entra ID shows it, like 72f988bf-86f1-41af-91ab-2d7cd011db47"
        )
    elif any(t.tenant_id == tenant_id for t in provider.tenants):
        errors["tenant_id"] = "That tenant is mapped already: remove it first to change its force"
    try:
        force = resolve_force(force_name)
    except FieldErrors:
        errors["tenant_force"] = "Choose the force whose people are in this tenant"
    problem = domains_problem(email_domains)
    if problem:
        errors["tenant_domains"] = problem
    if errors:
        raise FieldErrors(errors)
    tenant = ProviderTenant(
        provider=provider,
        tenant_id=tenant_id,
        force=force,
        email_domains=" ".join(sso.domains_of(email_domains)),
    )
    db.session.add(tenant)
    db.session.flush()
    audit.record(
        "admin.tenant_mapped",
        actor=admin,
        target=provider,
        detail={"tenant": tenant_id, "force": force.slug, "domains": tenant.email_domains},
    )
    db.session.commit()


def unmap_tenant(admin: User, tenant: ProviderTenant) -> None:
    """Stop a tenant signing in (people already linked keep their accounts and passwords)."""
    audit.record(
        "admin.tenant_unmapped",
        actor=admin,
        target=tenant.provider,
        detail={"tenant": tenant.tenant_id, "force": tenant.force.slug},
    )
    db.session.delete(tenant)
    db.session.commit()
