"""Admin pages: find users and change their status, role and force; read the audit log."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..auth.permissions import require_role
from ..core.text import clean_query
from ..extensions import db
from ..models import Role, Synonym, User, UserStatus
from ..reference import force_names_and_aliases
from ..web.forms import carry_out, render_form
from . import services
from .forms import ConfirmUserForm, ForceForm, RoleForm, StatusForm, SynonymForm

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.before_request(require_role(Role.ADMIN))


@bp.get("")
def index():
    return redirect(url_for(".users"))


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
    context = {"user": user, "forces": force_names_and_aliases(), **_forms(user, **replace)}
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


@bp.post("/users/<id:user_id>/role")
def change_role(user_id: int):
    user = _user_or_404(user_id)
    form = RoleForm()
    return _apply(
        user,
        form,
        "role_form",
        lambda: services.set_role(current_user, user, Role(form.role.data)),
        "Role changed.",
    )


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
    """Show the audit log, newest first."""
    page = services.audit_log(page=max(1, request.args.get("page", 1, type=int)))
    return render_template("admin/audit.html", results=page)


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
