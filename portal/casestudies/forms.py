"""The case-study form: a draft may be incomplete, a submission may not."""

from __future__ import annotations

import re

from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from wtforms import (
    BooleanField,
    EmailField,
    FieldList,
    RadioField,
    SelectChoice,
    SelectMultipleField,
    StringField,
    TextAreaField,
    ValidationError,
)
from wtforms.validators import Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from ..core import rules
from ..core.rules import Content
from ..core.text import EMAIL_MAX, is_clean_text, looks_like_email
from ..models import EVIDENCE_LABELS, Evidence
from ..web.forms import stripped


def _clean(form, field):
    if field.data and not is_clean_text(field.data, multiline=True):
        raise ValidationError(rules.CONTROL_PROBLEM)


def _one_line(form, field):
    # Titles and names go into email subjects and feed titles: one line only.
    if field.data and not is_clean_text(field.data, multiline=False):
        raise ValidationError(rules.ONE_LINE_PROBLEM)


def _text_rules(name: str) -> list:
    """The validators of one text field: its limit and its characters, with the shared messages."""
    most, _, multiline = rules.TEXT_FIELDS[name]
    return [Length(max=most, message=rules.too_long(name)), _clean if multiline else _one_line]


class CaseStudyForm(FlaskForm):
    title = StringField("Title", filters=[stripped], validators=_text_rules("title"))
    summary = TextAreaField("Summary", filters=[stripped], validators=_text_rules("summary"))
    body = TextAreaField("What you did", validators=_text_rules("body"))
    themes = SelectMultipleField(
        "Themes",
        coerce=int,
        option_widget=CheckboxInput(),
        widget=ListWidget(prefix_label=False),
        validators=[Optional()],
    )
    partners = FieldList(
        StringField(
            "Partner organisation",
            filters=[stripped],
            validators=[Length(max=rules.PARTNER_MAX, message=rules.PARTNER_TOO_LONG), _one_line],
        ),
        min_entries=rules.PARTNERS_MAX,
        max_entries=20,  # read at most this many; more than PARTNERS_MAX named is an error
    )
    event_day = StringField("Day", filters=[stripped], validators=[Length(max=2)])
    event_month = StringField("Month", filters=[stripped], validators=[Length(max=2)])
    event_year = StringField("Year", filters=[stripped], validators=[Length(max=4)])
    outcomes = TextAreaField("Outcomes", validators=_text_rules("outcomes"))
    lessons = TextAreaField("Lessons learned", validators=_text_rules("lessons"))
    evidence = RadioField(
        "Evidence of impact",
        choices=[SelectChoice(e.value, EVIDENCE_LABELS[e]) for e in Evidence],
        validators=[Optional()],
    )
    contact_name = StringField(
        "Contact name", filters=[stripped], validators=_text_rules("contact_name")
    )
    contact_email = EmailField(
        "Contact email address", filters=[stripped], validators=[Length(max=EMAIL_MAX)]
    )
    attachments = MultipleFileField("Attachments")
    no_personal_data = BooleanField("There is no victim or personal data in it")
    not_sensitive = BooleanField("There is nothing operationally sensitive in it")
    permission = BooleanField("Everyone named or pictured has given permission")

    def set_theme_choices(self, themes) -> None:
        self.themes.choices = [SelectChoice(t.id, t.name) for t in themes]

    def validate_themes(self, field):
        if len(field.data or []) > rules.THEMES_MAX:
            raise ValidationError(rules.TOO_MANY_THEMES)

    def validate_partners(self, field):
        named = [entry for entry in field.entries if entry.data]
        if len(named) > rules.PARTNERS_MAX:
            # Shown beside the first name past the limit (a list has no place of its own).
            extra = named[rules.PARTNERS_MAX]
            extra.errors = [*extra.errors, rules.TOO_MANY_PARTNERS]
            raise ValidationError(rules.TOO_MANY_PARTNERS)

    def validate_contact_email(self, field):
        if field.data and not looks_like_email(field.data):
            raise ValidationError(rules.EMAIL_PROBLEM)

    def validate_event_year(self, field):
        parts = (self.event_day.data, self.event_month.data, self.event_year.data)
        if not any(parts):
            return
        if not all(parts):
            raise ValidationError("Enter the day, month and year, for example 8 3 2025")
        day, month, year = parts
        if not all(re.fullmatch(r"[0-9]{1,4}", part) for part in (day, month, year)):
            raise ValidationError("Enter the date as numbers, for example 8 3 2025")
        if rules.parse_event_date(f"{int(year):04d}-{int(month):02d}-{int(day):02d}") is None:
            raise ValidationError(
                f"Enter a real date between {rules.EARLIEST_YEAR} and {rules.LATEST_YEAR}"
            )

    @property
    def checklist_ticked(self) -> bool:
        return bool(self.no_personal_data.data and self.not_sensitive.data and self.permission.data)

    def content(self) -> Content:
        """Return what the author wrote, as the services take it."""
        event_date = None
        parts = (self.event_day.data, self.event_month.data, self.event_year.data)
        if all(p and re.fullmatch(r"[0-9]{1,4}", p) for p in parts):
            event_date = rules.parse_event_date(
                f"{int(self.event_year.data):04d}-{int(self.event_month.data):02d}-"
                f"{int(self.event_day.data):02d}"
            )
        return Content(
            title=self.title.data or "",
            summary=self.summary.data or "",
            body=self.body.data or "",
            theme_ids=list(self.themes.data or []),
            partners=[p for p in self.partners.data if p],
            event_date=event_date,
            outcomes=self.outcomes.data or "",
            lessons=self.lessons.data or "",
            evidence=Evidence(self.evidence.data) if self.evidence.data else None,
            contact_name=self.contact_name.data or "",
            contact_email=self.contact_email.data or "",
        )

    def fill(self, content: Content) -> None:
        """Show saved content in the form (on GET)."""
        self.title.data, self.summary.data, self.body.data = (
            content.title,
            content.summary,
            content.body,
        )
        self.themes.data = content.theme_ids
        while len(self.partners.entries) < len(content.partners):
            self.partners.append_entry()
        for entry, name in zip(self.partners.entries, content.partners + [""] * 20, strict=False):
            entry.data = name
        if content.event_date:
            self.event_day.data = str(content.event_date.day)
            self.event_month.data = str(content.event_date.month)
            self.event_year.data = str(content.event_date.year)
        self.outcomes.data, self.lessons.data = content.outcomes, content.lessons
        self.evidence.data = content.evidence.value if content.evidence else None
        self.contact_name.data, self.contact_email.data = (
            content.contact_name,
            content.contact_email,
        )


class DecisionForm(FlaskForm):
    comment = TextAreaField(
        "Comment for the author",
        filters=[stripped],
        validators=[Length(max=rules.COMMENT_MAX, message=rules.COMMENT_TOO_LONG), _clean],
    )


class ActionForm(FlaskForm):
    """Only a CSRF token: for withdraw, archive and removing an attachment."""
