"""Forms for accounts. Passwords are never stripped or changed: they are used as typed."""

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField, ValidationError
from wtforms.validators import DataRequired, Length

from ..core.text import EMAIL_MAX, looks_like_email
from ..reference import find_force
from .passwords import password_problem


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def validate_force_name(name: str | None) -> None:
    """Refuse a force name that is neither a force's name nor one of its aliases."""
    if name and find_force(name) is None:
        raise ValidationError("Choose your force from the list")


def validate_person_name(name: str | None) -> None:
    from .services import name_problem

    problem = name_problem(name or "")
    if problem:
        raise ValidationError(problem)


def _person_name_field() -> StringField:
    return StringField(
        "Full name",
        filters=[_strip],
        validators=[
            DataRequired("Enter your full name"),
            Length(max=120),
            lambda _form, field: validate_person_name(field.data),
        ],
    )


def _force_field() -> StringField:
    return StringField(
        "Force or organisation",
        filters=[_strip],
        validators=[
            DataRequired("Choose your force from the list"),
            lambda _form, field: validate_force_name(field.data),
        ],
    )


class LoginForm(FlaskForm):
    email = EmailField(
        "Email address",
        filters=[_strip],
        validators=[DataRequired("Enter your email address"), Length(max=254)],
    )
    password = PasswordField("Password", validators=[DataRequired("Enter your password")])


class RegisterForm(FlaskForm):
    name = _person_name_field()
    email = EmailField(
        "Work email address",
        filters=[_strip],
        validators=[
            DataRequired("Enter your work email address"),
            Length(max=EMAIL_MAX, message="Enter a shorter email address"),
        ],
    )
    force = _force_field()
    password = PasswordField("Create a password", validators=[DataRequired("Create a password")])

    # The same rules the service enforces, checked here too so every mistake shows at once.
    def validate_email(self, field):
        from . import services

        if not looks_like_email(field.data or ""):
            raise ValidationError(
                "Enter an email address in the correct format, like name@force.police.uk"
            )
        problem = services.email_domain_problem(field.data)
        if problem:
            raise ValidationError(problem)

    def validate_password(self, field):
        problem = password_problem(
            field.data or "", name=self.name.data or "", email=self.email.data or ""
        )
        if problem:
            raise ValidationError(problem)


class EmailForm(FlaskForm):
    email = EmailField(
        "Email address",
        filters=[_strip],
        validators=[DataRequired("Enter your email address"), Length(max=254)],
    )


class NewPasswordForm(FlaskForm):
    password = PasswordField("New password", validators=[DataRequired("Enter a new password")])


class FinishRegistrationForm(NewPasswordForm):
    """A reset link for an address never confirmed: its owner gives their own details, since
    whoever registered the address may not have been them."""

    name = _person_name_field()
    force = _force_field()


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        "Current password", validators=[DataRequired("Enter your current password")]
    )
    new_password = PasswordField("New password", validators=[DataRequired("Enter a new password")])


class ProfileForm(FlaskForm):
    name = _person_name_field()
    listed_as_contact = BooleanField("List me as a HeForShe contact on my force's page")
    contact_role = StringField(
        "Your HeForShe role (optional)",
        filters=[_strip],
        validators=[Length(max=120, message="Your role must be 120 characters or fewer")],
    )


class ConfirmEmailForm(FlaskForm):
    password = PasswordField("Password", validators=[DataRequired("Enter the password you chose")])


class MfaSetupForm(FlaskForm):
    code = StringField(
        "Code", filters=[_strip], validators=[DataRequired("Enter the code"), Length(max=20)]
    )
    password = PasswordField("Your password", validators=[DataRequired("Enter your password")])


class CodeForm(FlaskForm):
    code = StringField(
        "Code", filters=[_strip], validators=[DataRequired("Enter the code"), Length(max=20)]
    )


class PasswordCheckForm(FlaskForm):
    password = PasswordField("Password", validators=[DataRequired("Enter your password")])
