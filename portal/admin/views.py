"""Admin pages: the landing page; find users and change their status, role and force;
synonyms; the audit log with its filters; the mail queue and resending what failed."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..account import closing
from ..auth import sso
from ..auth.forms import force_choices
from ..auth.permissions import require_role
from ..core.errors import FieldErrors
from ..core.links import external_url
from ..core.text import clean_query
from ..extensions import db
from ..models import IdentityProvider, ProviderTenant, Role, Synonym, User, UserStatus
from ..web.forms import add_errors, carry_out, render_form
from ..web.people import signed_in_user
from . import audit_log as log
from . import mail_queue, providers, services
from .forms import (
    AuditFilterForm,
    ConfirmUserForm,
    ForceForm,
    ProviderForm,
    ResendMailForm,
    RoleForm,
    StatusForm,
    SynonymForm,
    TenantForm,
)

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.before_request(require_role(Role.ADMIN))


@bp.get("")
def index():
    """The admin pages in one place, with what is waiting for an admin."""
    return render_template(
        "admin/index.html",
        waiting=services.overview(),
        mail_attention=mail_queue.needing_attention(),
    )


@bp.get("/users")
def users():
    """List and search users."""
    text = clean_query(request.args.get("q", "", type=str))
    page = services.search_users(text, page=max(1, request.args.get("page", 1, type=int)))
    return render_template("admin/users.html", q=text, results=page)


def _user_or_404(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user


def _forms(user: User, **replace):
    forms = {
        "role_form": RoleForm(role=user.role.value),
        "force_form": ForceForm(force=user.force.name),
        "status_form": StatusForm(
            status=user.status.value if user.status != UserStatus.PENDING else "active"
        ),
        "confirm_form": ConfirmUserForm(),
    }
    forms.update(replace)
    return forms


def _user_page(user: User, failed=None, **replace):
    context = {"user": user, "forces": force_choices(), **_forms(user, **replace)}
    if failed is not None:
        return render_form("admin/user.html", failed, **context)
    return render_template("admin/user.html", **context)


@bp.get("/users/<id:user_id>")
def user(user_id: int):
    """Show one user with the changes an admin can make."""
    return _user_page(_user_or_404(user_id))


def _apply(user: User, form, form_name: str, change, message: str):
    if carry_out(form, change).done:
        flash(message, "success")
        return redirect(url_for(".user", user_id=user.id), code=303)
    return _user_page(user, failed=form, **{form_name: form})


def _a(role: Role) -> str:
    return ("an " if role == Role.ADMIN else "a ") + role.value


@bp.post("/users/<id:user_id>/role")
def change_role(user_id: int):
    """Change a role; its owner is emailed what they can now do (once, on a real change)."""
    user = _user_or_404(user_id)
    form = RoleForm()
    step = carry_out(form, lambda: services.set_role(signed_in_user(), user, Role(form.role.data)))
    if not step.done:
        return _user_page(user, failed=form, role_form=form)
    change, role = step.value, _a(user.role)
    if not change.changed:
        flash(f"{user.name} is already {role}: nothing changed.", "info")
    elif change.emailed:
        flash(f"{user.name} is now {role}. We are emailing them to say so.", "success")
    else:
        flash(f"{user.name} is now {role}. They were not emailed: the account is not active.")
    return redirect(url_for(".user", user_id=user.id), code=303)


@bp.post("/users/<id:user_id>/force")
def change_force(user_id: int):
    user = _user_or_404(user_id)
    form = ForceForm()
    return _apply(
        user,
        form,
        "force_form",
        lambda: services.set_force(current_user, user, form.force.data),
        "Force changed.",
    )


@bp.post("/users/<id:user_id>/status")
def change_status(user_id: int):
    user = _user_or_404(user_id)
    form = StatusForm()
    return _apply(
        user,
        form,
        "status_form",
        lambda: services.set_status(current_user, user, UserStatus(form.status.data)),
        "Status changed.",
    )


@bp.post("/users/<id:user_id>/confirm")
def confirm(user_id: int):
    user = _user_or_404(user_id)
    form = ConfirmUserForm()
    return _apply(
        user,
        form,
        "confirm_form",
        lambda: services.confirm_user(current_user, user),
        "Account confirmed.",
    )


@bp.get("/audit")
def audit_log():
    """Show the audit log, newest first, narrowed by event, person and dates."""
    form = AuditFilterForm(request.args)
    form.validate()  # nothing to check here (read_filters does), but it readies the errors
    choices = log.event_choices()
    known = {code for _, group in choices for code, _ in group}
    try:
        filters = log.read_filters(
            form.event.data,
            form.person.data,
            (form.start_day.data, form.start_month.data, form.start_year.data),
            (form.end_day.data, form.end_month.data, form.end_year.data),
            known,
        )
    except FieldErrors as refused:
        add_errors(form, refused.errors)
        return render_form("admin/audit.html", form, choices=choices, results=None, entries=[])
    results = log.find(filters, page=request.args.get("page", 1, type=int))
    return render_template(
        "admin/audit.html",
        form=form,
        choices=choices,
        filters=filters,
        results=results,
        entries=log.entries(results.items),
        describe=log.describe,
    )


@bp.route("/synonyms", methods=["GET", "POST"])
def synonyms():
    """List the search synonyms and add one."""
    form = SynonymForm()
    if carry_out(
        form, lambda: services.add_synonym(current_user, form.term.data, form.expansion.data)
    ).done:
        flash("Added. Searches use it now.", "success")
        return redirect(url_for(".synonyms"), code=303)
    return render_form(
        "admin/synonyms.html", form, synonyms=services.synonyms(), delete_form=ConfirmUserForm()
    )


@bp.post("/synonyms/<id:synonym_id>/delete")
def delete_synonym(synonym_id: int):
    """Remove a synonym."""
    synonym = db.session.get(Synonym, synonym_id)
    if synonym is None:
        abort(404)
    if not ConfirmUserForm().validate_on_submit():
        abort(400)
    services.delete_synonym(current_user, synonym)
    flash(f"Removed {synonym.term}.", "success")
    return redirect(url_for(".synonyms"), code=303)


def _mail_view() -> tuple[mail_queue.Filter | None, int]:
    """The filter and page in the URL: an unknown state shows every message; odd page
    numbers (0, -1, text, past the last) show a real page (paginate clamps)."""
    return (
        mail_queue.read_filter(request.args.get("state", "", type=str)),
        request.args.get("page", 1, type=int),
    )


def _mail_kept(choice: mail_queue.Filter | None, page: int = 1) -> dict:
    return {"state": choice.value if choice else None, "page": page if page > 1 else None}


def _mail_page(choice: mail_queue.Filter | None, page: int, form: ResendMailForm | None = None):
    results = mail_queue.find(choice, page)
    return render_form(
        "admin/mail.html",
        form or ResendMailForm(),
        choice=choice,
        filters=mail_queue.FILTERS,
        counts=mail_queue.counts(),
        results=results,
        kept=_mail_kept(choice, results.page),
        resend_at_once=mail_queue.RESEND_AT_ONCE,
    )


@bp.get("/mail")
def mail():
    """Every email the portal recorded, newest first, by state; never a message's body."""
    return _mail_page(*_mail_view())


@bp.post("/mail/<id:message_id>/resend")
def resend_mail(message_id: int):
    """Put one failed or unconfirmed email back in the queue; back to the same page."""
    message = mail_queue.message_or_none(message_id)
    if message is None:
        abort(404)
    choice, page = _mail_view()
    form = ResendMailForm()
    to = message.to
    if not carry_out(form, lambda: mail_queue.resend_message(signed_in_user(), message)).done:
        return _mail_page(choice, page, form)
    flash(f"The email to {to} is back in the queue. It is usually sent within a minute.", "success")
    return redirect(url_for(".mail", **_mail_kept(choice, page)), code=303)


@bp.post("/mail/resend-failed")
def resend_failed_mail():
    """Put the failed emails (up to RESEND_AT_ONCE, oldest first) back in the queue."""
    choice, page = _mail_view()
    form = ResendMailForm()
    step = carry_out(form, lambda: mail_queue.resend_failed(signed_in_user()))
    if not step.done:
        return _mail_page(choice, page, form)
    count = step.value
    flash(
        f"{count:,} failed email{'' if count == 1 else 's'} "
        f"{'is' if count == 1 else 'are'} back in the queue.",
        "success",
    )
    return redirect(url_for(".mail", **_mail_kept(choice, page)), code=303)


# Sign-in providers (single sign-on): portal/admin/providers.py


def _provider_or_404(provider_id: int) -> IdentityProvider:
    provider = db.session.get(IdentityProvider, provider_id)
    if provider is None:
        abort(404)
    return provider


@bp.get("/sign-in-providers")
def sign_in_providers():
    """The providers people may sign in with, and whether the portal can use each."""
    return render_template(
        "admin/providers.html",
        providers=providers.providers(),
        secret_found={p.id: bool(sso.client_secret(p)) for p in providers.providers()},
    )


def _provider_form_values(form: ProviderForm) -> dict:
    return {
        "name": form.name.data or "",
        "kind": form.kind.data or "",
        "discovery_url": form.discovery_url.data or "",
        "client_id": form.client_id.data or "",
        "force_name": form.force.data or "",
        "email_domains": form.email_domains.data or "",
        "trust_mfa": bool(form.trust_mfa.data),
        "mfa_acr": form.mfa_acr.data or "",
        "enabled": bool(form.enabled.data),
    }


def _saved_form(provider: IdentityProvider) -> ProviderForm:
    """The provider's form as saved (never what a request sent)."""
    return ProviderForm(
        formdata=None,
        name=provider.name,
        kind=provider.kind.value,
        discovery_url=provider.discovery_url,
        client_id=provider.client_id,
        force=provider.force.name if provider.force else "",
        email_domains=provider.email_domains,
        trust_mfa=provider.trust_mfa,
        mfa_acr=provider.mfa_acr,
        enabled=provider.enabled,
    )


def _provider_page(provider: IdentityProvider | None, form: ProviderForm, tenant_form=None):
    return render_form(
        "admin/provider.html",
        form,
        provider=provider,
        tenant_form=tenant_form or TenantForm(),
        remove_form=ConfirmUserForm(),
        forces=force_choices(),
        secret_found=bool(provider and sso.client_secret(provider)),
        secret_variable=sso.secret_variable(provider.slug) if provider else None,
        callback_url=external_url("auth.sso_callback"),
        signed_out_url=external_url("auth.login"),
        entra_discovery=sso.ENTRA_DISCOVERY,
    )


@bp.route("/sign-in-providers/new", methods=["GET", "POST"])
def new_provider():
    """Add a provider; its secret goes in the environment, never in this form."""
    form = (
        ProviderForm()
        if request.method == "POST"
        else ProviderForm(kind="entra", discovery_url=sso.ENTRA_DISCOVERY, enabled=True)
    )
    step = carry_out(
        form, lambda: providers.save(current_user, None, **_provider_form_values(form))
    )
    if step.done:
        flash(
            f"Added {step.value.name}. Put its client secret in "
            f"{sso.secret_variable(step.value.slug)} to offer it on the sign-in page.",
            "success",
        )
        return redirect(url_for(".provider", provider_id=step.value.id), code=303)
    return _provider_page(None, form)


@bp.route("/sign-in-providers/<id:provider_id>", methods=["GET", "POST"])
def provider(provider_id: int):
    """Change a provider; map Entra ID tenants to forces."""
    chosen = _provider_or_404(provider_id)
    form = ProviderForm() if request.method == "POST" else _saved_form(chosen)
    step = carry_out(
        form, lambda: providers.save(current_user, chosen, **_provider_form_values(form))
    )
    if step.done:
        flash("Saved. The next sign-in uses it.", "success")
        return redirect(url_for(".provider", provider_id=chosen.id), code=303)
    return _provider_page(chosen, form)


@bp.post("/sign-in-providers/<id:provider_id>/tenants")
def map_tenant(provider_id: int):
    """Allow an Entra ID tenant to sign in, its people in a force."""
    chosen = _provider_or_404(provider_id)
    tenant_form = TenantForm()
    step = carry_out(
        tenant_form,
        lambda: providers.map_tenant(
            current_user,
            chosen,
            tenant_form.tenant_id.data or "",
            tenant_form.tenant_force.data or "",
            tenant_form.tenant_domains.data or "",
        ),
    )
    if step.done:
        flash("Tenant mapped. Its people can sign in now.", "success")
        return redirect(url_for(".provider", provider_id=chosen.id) + "#tenants", code=303)
    page, _ = _provider_page(chosen, _saved_form(chosen), tenant_form=tenant_form)
    return page, 400


@bp.post("/sign-in-providers/<id:provider_id>/tenants/<id:tenant_id>/remove")
def unmap_tenant(provider_id: int, tenant_id: int):
    """Stop a tenant signing in."""
    chosen = _provider_or_404(provider_id)
    tenant = db.session.get(ProviderTenant, tenant_id)
    if tenant is None or tenant.provider_id != chosen.id:
        abort(404)
    if not ConfirmUserForm().validate_on_submit():
        abort(400)
    providers.unmap_tenant(current_user, tenant)
    flash(
        f"Removed tenant {tenant.tenant_id}. Its people can no longer sign in with it.", "success"
    )
    return redirect(url_for(".provider", provider_id=chosen.id) + "#tenants", code=303)


@bp.route("/users/<id:user_id>/close", methods=["GET", "POST"])
def close_user(user_id: int):
    """Close a person's account on their request (the same rules as closing your own)."""
    user = _user_or_404(user_id)
    live = closing.live_case_studies(user)
    choices, errors, confirm = {}, {}, ""
    if request.method == "POST":
        if not ConfirmUserForm().validate_on_submit():
            abort(400)
        choices = closing.read_choices(request.form, live)
        confirm = request.form.get("confirm", "")[:300]
        try:
            closing.close(signed_in_user(), user, choices, confirm)
        except FieldErrors as failure:
            errors = failure.errors
        else:
            flash("The account is closed.", "success")
            return redirect(url_for(".user", user_id=user.id), code=303)
    page = render_template(
        "account/close.html",
        user=user,
        case_studies=live,
        choices=choices,
        errors=errors,
        confirm=confirm,
        action=url_for(".close_user", user_id=user.id),
        by_admin=True,
        form=ConfirmUserForm(),
        own_contact=closing.own_contact,
        published=closing.published,
    )
    return page, 400 if errors else 200
