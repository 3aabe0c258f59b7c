"""Forms for accounts. Passwords are never stripped or changed: they are used as typed."""

from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from wtforms import EmailField, PasswordField, StringField, ValidationError
from wtforms.validators import DataRequired, Length

from ..core.text import EMAIL_MAX, looks_like_email
from ..extensions import db
from ..models import Force
from ..reference import find_force
from ..web.forms import stripped
from .passwords import password_problem


def force_choices() -> list[tuple[str, str]]:
    """Return each force once, as (name, its aliases), for the force field's suggestions.

    One suggestion a force: its name is what goes in the field, and its aliases are the
    suggestion's label, so typing "Northants" or "the Met" still finds it. Whatever alias
    is typed and sent as it is, the server resolves (validate_force_name, find_force).
    """
    forces = db.session.scalars(select(Force).options(selectinload(Force.aliases)))
    return sorted(
        ((force.name, ", ".join(a.alias for a in force.aliases)) for force in forces),
        key=lambda choice: choice[0].casefold(),
    )


def validate_force_name(name: str | None) -> None:
    """Refuse a force name that is neither a force's name nor one of its aliases."""
    if name and find_force(name) is None:
        raise ValidationError("Choose your force from the list")


def validate_person_name(name: str | None) -> None:
    from .services import name_problem

    problem = name_problem(name or "")
    if problem:
        raise ValidationError(problem)


def person_name_field() -> StringField:
    return StringField(
        "Full name",
        filters=[stripped],
        validators=[
            DataRequired("Enter your full name"),
            Length(max=120),
            lambda _form, field: validate_person_name(field.data),
        ],
    )


def _force_field() -> StringField:
    return StringField(
        "Force or organisation",
        filters=[stripped],
        validators=[
            DataRequired("Choose your force from the list"),
            lambda _form, field: validate_force_name(field.data),
        ],
    )


class LoginForm(FlaskForm):
    email = EmailField(
        "Email address",
        filters=[stripped],
        validators=[DataRequired("Enter your email address"), Length(max=254)],
    )
    password = PasswordField("Password", validators=[DataRequired("Enter your password")])


class RegisterForm(FlaskForm):
    name = person_name_field()
    email = EmailField(
        "Work email address",
        filters=[stripped],
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
        filters=[stripped],
        validators=[DataRequired("Enter your email address"), Length(max=254)],
    )


class NewPasswordForm(FlaskForm):
    password = PasswordField("New password", validators=[DataRequired("Enter a new password")])


class FinishRegistrationForm(NewPasswordForm):
    """A reset link for an address never confirmed: its owner gives their own details, since
    whoever registered the address may not have been them."""

    name = person_name_field()
    force = _force_field()


class ConfirmEmailForm(FlaskForm):
    password = PasswordField("Password", validators=[DataRequired("Enter the password you chose")])


class CodeForm(FlaskForm):
    code = StringField(
        "Code", filters=[stripped], validators=[DataRequired("Enter the code"), Length(max=20)]
    )


class LinkAccountForm(FlaskForm):
    password = PasswordField(
        "Password", validators=[DataRequired("Enter your password"), Length(max=1024)]
    )
    code = StringField("Code", filters=[stripped], validators=[Length(max=20)])
