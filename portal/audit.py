"""Record who did what, to which object, when and from where, in the audit log."""

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
