"""Form pages the same way everywhere: a service's refusal next to the fields, status 400."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import render_template

from ..core.errors import FieldErrors


def render_form(template: str, form, status: int = 200, **context):
    """Render a form page; a form with errors answers 400 and keeps what was typed."""
    if form.errors or form.form_errors:
        status = 400
    return render_template(template, form=form, **context), status


def add_errors(form, errors: dict[str, str]) -> None:
    """Put a service's messages next to their fields (above the form for any other name)."""
    for name, message in errors.items():
        if name in form:
            form[name].errors = [*form[name].errors, message]
        else:
            form.form_errors.append(message)


@dataclass(frozen=True)
class Step:
    """What became of a form's submission: `done`, with the service's answer in `value`."""

    done: bool
    value: Any = None


def carry_out(form, step: Callable[[], Any]) -> Step:
    """Run `step` (a service call) when the form is submitted and valid.

    The service's FieldErrors go next to the form's fields, so the page shows them with
    everything that was typed; the caller redirects when the step is done.
    """
    if not form.validate_on_submit():
        return Step(False)
    try:
        return Step(True, step())
    except FieldErrors as failure:
        add_errors(form, failure.errors)
        return Step(False)


def stripped(value):
    """A field filter: text without the spaces around it (passwords never use it)."""
    return value.strip() if isinstance(value, str) else value
