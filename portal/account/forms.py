"""Forms for the signed-in user's own account. Passwords are used exactly as typed."""

from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from ..auth.forms import person_name_field
from ..web.forms import stripped


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        "Current password", validators=[DataRequired("Enter your current password")]
    )
    new_password = PasswordField("New password", validators=[DataRequired("Enter a new password")])


class ProfileForm(FlaskForm):
    name = person_name_field()
    listed_as_contact = BooleanField("List me as a HeForShe contact on my force's page")
    contact_role = StringField(
        "Your HeForShe role (optional)",
        filters=[stripped],
        validators=[Length(max=120, message="Your role must be 120 characters or fewer")],
    )


class MfaSetupForm(FlaskForm):
    code = StringField(
        "Code", filters=[stripped], validators=[DataRequired("Enter the code"), Length(max=20)]
    )
    password = PasswordField("Your password", validators=[DataRequired("Enter your password")])


class PasswordCheckForm(FlaskForm):
    password = PasswordField("Password", validators=[DataRequired("Enter your password")])


class ForceChangeForm(FlaskForm):
    """Ask the admins to change your force: the force (a name or an alias) and a note.

    The service checks both (request_force_change), so every mistake shows at once.
    """

    force = StringField("Your new force or organisation", filters=[stripped])
    note = TextAreaField("Anything the admins should know (optional)", filters=[stripped])


class ConfirmForm(FlaskForm):
    """Only a CSRF token: the button does what it says."""
