"""Render form pages the same way everywhere: errors next to fields, status 400."""

from flask import render_template


def render_form(template: str, form, status: int = 200, **context):
    """Render a form page; a form with errors answers 400 and keeps what was typed."""
    if form.errors:
        status = 400
    return render_template(template, form=form, **context), status


def add_errors(form, errors: dict[str, str]) -> None:
    """Attach a service's field errors to the form's fields."""
    for name, message in errors.items():
        form[name].errors = [*form[name].errors, message]
