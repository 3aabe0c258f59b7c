"""The one form of the following page: whether to get the weekly digest."""

from flask_wtf import FlaskForm
from wtforms import RadioField, SelectChoice
from wtforms.validators import InputRequired


class DigestForm(FlaskForm):
    digest = RadioField(
        "Weekly digest",
        choices=[
            SelectChoice("yes", "Yes, email me a weekly digest"),
            SelectChoice("no", "No, do not email me"),
        ],
        validators=[InputRequired("Choose whether to get the weekly digest")],
    )
