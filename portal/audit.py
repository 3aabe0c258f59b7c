"""Record who did what, to which object, when and from where, in the audit log; name it.

Every event is stored under a code such as "admin.user_role_changed". People reading the
log see its plain-English name (EVENT_NAMES); a code not in the table yet (an area added an
event and not its name) is still shown readably by `describe`.
"""

from __future__ import annotations

import json
from typing import Any

from flask import has_request_context, request

from .extensions import db
from .models import AuditEvent, User


def record(
    action: str,
    *,
    actor: User | None = None,
    target: Any = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit event to the current transaction; the caller commits."""
    event = AuditEvent(
        actor_id=actor.id if actor is not None else None,
        action=action,
        target_type=type(target).__tablename__ if target is not None else None,
        target_id=getattr(target, "id", None),
        # Stored as JSON, so nothing a user types can pose as another field or line.
        detail=json.dumps(detail or {}, ensure_ascii=False, sort_keys=True),
        ip_address=request.remote_addr if has_request_context() else None,
    )
    db.session.add(event)
    return event


#: What each event is called in the audit log: every code the portal records.
EVENT_NAMES: dict[str, str] = {
    # Registering and confirming
    "auth.registered": "Registered",
    "auth.registration_replaced": "Registered again before confirming",
    "auth.register_existing": "Someone tried to register an address already in use",
    "auth.confirm_password_failed": "Wrong password while confirming an email address",
    "auth.email_confirmed": "Confirmed their email address",
    "auth.registration_finished_by_reset": "Finished registering through a password reset",
    "user.created": "Account created on the command line",
    # Signing in and out
    "retention.run": "Old data deleted by the retention job",
    "auth.login": "Signed in",
    "auth.login_failed": "Sign-in failed",
    "auth.login_refused": "Sign-in refused: account not active",
    "auth.logout": "Signed out",
    "auth.sso_account_created": "Account created by signing in with a force account",
    "auth.sso_linked": "Force account linked (after the account's password)",
    "auth.sso_refused": "Sign-in with a force account refused",
    "auth.sso_link_offered": "Offered to link a force account (its email matched)",
    "account.sso_unlinked": "Force sign-in removed from the account",
    "account.data_downloaded": "Downloaded their data",
    "account.closed": "Account closed",
    "case_study.contact_handed_over": "Case study's contact handed to a colleague",
    "auth.second_factor_failed": "Wrong security code",
    "auth.second_factor_locked": "Sign-in paused after 10 wrong security codes",
    "auth.recovery_code_used": "Used a recovery code",
    # Their own account
    "account.profile_changed": "Changed their details",
    "account.force_change_requested": "Asked the admins to change their force",
    "auth.password_changed": "Changed their password",
    "auth.password_check_failed": "Wrong password on an account page",
    "auth.password_reset_requested": "Asked to reset their password",
    "auth.password_reset": "Reset their password",
    "auth.mfa_enabled": "Turned on two-factor authentication",
    "auth.mfa_disabled": "Turned off two-factor authentication",
    "auth.recovery_codes_regenerated": "Got new recovery codes",
    # Admins
    "admin.user_confirmed": "Account confirmed by an admin",
    "admin.user_role_changed": "Role changed",
    "admin.user_force_changed": "Force changed",
    "admin.provider_created": "Sign-in provider added",
    "admin.provider_changed": "Sign-in provider changed",
    "admin.tenant_mapped": "Entra ID tenant mapped to a force",
    "admin.tenant_unmapped": "Entra ID tenant removed",
    "admin.user_status_changed": "Account enabled or disabled",
    "admin.synonym_added": "Search synonym added",
    "admin.synonym_deleted": "Search synonym removed",
    "admin.mail_resent": "Email resent",
    "admin.failed_mail_resent": "Failed emails resent together",
    # Case studies and moderation
    "case_study.saved": "Case study saved",
    "case_study.submitted": "Case study sent for moderation",
    "case_study.withdrawn": "Case study withdrawn from moderation",
    "case_study.deleted": "Case study deleted",
    "case_study.approved": "Case study approved",
    "case_study.changes_requested": "Changes requested",
    "case_study.rejected": "Case study rejected",
    "case_study.archived": "Case study archived",
    "case_study.contacted": "Author contacted",
    "adoption.recorded": "Adoption recorded",
    "adoption.updated": "Adoption changed",
    "adoption.removed": "Adoption removed",
    "case_studies.exported": "Case studies downloaded",
    "case_studies.imported": "Case studies imported",
}

#: The groups of the audit log's event filter, by the code's first part.
EVENT_GROUPS: dict[str, str] = {
    "auth": "Accounts and signing in",
    "account": "Accounts and signing in",
    "user": "Accounts and signing in",
    "admin": "Admins",
    "case_study": "Case studies and moderation",
    "case_studies": "Case studies and moderation",
    "adoption": "Case studies and moderation",
    "moderation": "Case studies and moderation",
}
OTHER_GROUP = "Other events"

_SUBJECTS = {
    "auth": "",
    "account": "",
    "user": "Account",
    "admin": "",
    "case_study": "Case study",
    "case_studies": "Case studies",
    "moderation": "Moderation",
}


def describe(action: str) -> str:
    """Return the plain-English name of an event code; a code not in the table is spelt out.

    "case_study.restored" reads "Case study restored"; "auth.passkey_added" reads
    "Passkey added".
    """
    if action in EVENT_NAMES:
        return EVENT_NAMES[action]
    area, _, what = action.partition(".")
    if not what:
        area, what = "", area
    subject = _SUBJECTS.get(area, area.replace("_", " "))
    words = " ".join(part for part in (subject, what.replace("_", " ").replace(".", " ")) if part)
    words = " ".join(words.split())
    return words[:1].upper() + words[1:] if words else "Unnamed event"


def group_of(action: str) -> str:
    """Return the heading an event code is listed under in the event filter."""
    return EVENT_GROUPS.get(action.partition(".")[0], OTHER_GROUP)
