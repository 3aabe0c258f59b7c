"""Forms for the admin pages."""

from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired

from ..models import Role, UserStatus


class RoleForm(FlaskForm):
    role = SelectField(
        "Role",
        choices=[SelectChoice(r.value, r.value.capitalize()) for r in Role],
        validators=[DataRequired()],
    )


class ForceForm(FlaskForm):
    force = StringField(
        "Force or organisation",
        filters=[lambda v: v.strip() if v else v],
        validators=[DataRequired("Choose a force from the list")],
    )


class StatusForm(FlaskForm):
    status = SelectField(
        "Status",
        choices=[
            SelectChoice(UserStatus.ACTIVE.value, "Active"),
            SelectChoice(UserStatus.DISABLED.value, "Disabled"),
        ],
        validators=[DataRequired()],
    )


class ConfirmUserForm(FlaskForm):
    """Only a CSRF token: the button confirms the account."""


class SynonymForm(FlaskForm):
    term = StringField("Short form", validators=[DataRequired("Enter the short form, like vawg")])
    expansion = StringField(
        "What it stands for", validators=[DataRequired("Enter the words it stands for")]
    )
