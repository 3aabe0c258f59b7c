"""The moderator's forms: a decision on the review page, and the approval's check page."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, SelectChoice, TextAreaField, ValidationError
from wtforms.validators import Length, StopValidation

from ..core import rules
from ..core.text import is_clean_text
from ..web.forms import stripped

CHOICES = [
    SelectChoice("approve", "Approve and publish"),
    SelectChoice("changes", "Request changes"),
    SelectChoice("reject", "Reject"),
]
CHOOSE = "Select whether to approve, request changes or reject"


def _chosen(form, field):
    if field.data not in {choice.value for choice in CHOICES}:
        field.data = None
        raise StopValidation(CHOOSE)


def _clean(form, field):
    if field.data and not is_clean_text(field.data, multiline=True):
        raise ValidationError(rules.CONTROL_PROBLEM)


def _comment(label: str) -> TextAreaField:
    return TextAreaField(
        label,
        filters=[stripped],
        validators=[Length(max=rules.COMMENT_MAX, message=rules.COMMENT_TOO_LONG), _clean],
    )


class ReviewForm(FlaskForm):
    """The decision, taken on the review page below the content."""

    decision = RadioField(
        "What do you decide?", choices=CHOICES, validate_choice=False, validators=[_chosen]
    )
    comment = _comment("Comment for the author")
    #: The submission the moderator read (services.seen_token).
    seen = HiddenField()


class ApproveForm(FlaskForm):
    """The check page's form: publish, with an optional note for the author."""

    comment = _comment("Note for the author (optional)")
    seen = HiddenField()
