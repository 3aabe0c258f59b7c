"""The forms on a case study for reaching out: a message to its contact, an adoption."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import RadioField, SelectChoice, TextAreaField, ValidationError
from wtforms.validators import InputRequired

from ..models import AdoptionKind
from .services import message_problems, note_problems


def _rule(problems):
    def check(form, field):
        found = problems(field.data or "")
        if found:
            raise ValidationError(next(iter(found.values())))

    return check


class ContactForm(FlaskForm):
    # Not stripped as it arrives, so an error shows exactly what was typed.
    message = TextAreaField("Your message", validators=[_rule(message_problems)])


class AdoptionForm(FlaskForm):
    kind = RadioField(
        "How has your force taken it up?",
        choices=[SelectChoice(k.value, k.label) for k in AdoptionKind],
        validators=[InputRequired(message="Choose adopted or adapted")],
    )
    note = TextAreaField("A short note (optional)", validators=[_rule(note_problems)])
