"""The emails a person asks for without signing in, made by the job queue.

A reset or a new confirmation link is asked for with an address, and the reply never says
whether an account has it. The request only queues this job (the same work for a known
and an unknown address, so the reply's timing says nothing either); the job looks the
address up and, for an account, makes the token, the audit row and the email in one
transaction. When the database is away, the job is tried again (every 30 s for 10
minutes): a person told "check your email" gets the email.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app

from ..jobs import job
from . import services

STEPS: dict[str, Callable[[str], None]] = {
    "reset": services.request_password_reset,
    "confirm": services.resend_confirmation,
}


@job("email_step", retries=20, retry_delay=30)
def email_step(step: str, email: str, address: str) -> None:
    """Do what a person asked for by email address, as if in their request (its address)."""
    with current_app.test_request_context(environ_base={"REMOTE_ADDR": address}):
        STEPS[step](email)
