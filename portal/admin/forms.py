"""Forms for the admin pages."""

from flask_wtf import FlaskForm
from wtforms import BooleanField, Form, RadioField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired

from ..models import ProviderKind, Role, UserStatus


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


class AuditFilterForm(Form):
    """The audit log's filters: a GET form (no CSRF: it changes nothing), read by
    admin.audit_log.read_filters, which refuses every bad value next to its field."""

    event = StringField("Event")
    person = StringField("Person")
    start_day = StringField("Day")
    start_month = StringField("Month")
    start_year = StringField("Year")
    end_day = StringField("Day")
    end_month = StringField("Month")
    end_year = StringField("Year")

    def query_args(self) -> dict[str, str]:
        """The filters as typed, for links to other pages of the same log."""
        return {f.name: f.data.strip() for f in self if isinstance(f.data, str) and f.data.strip()}


class ResendMailForm(FlaskForm):
    """Only a CSRF token: the button puts a failed or unconfirmed email back in the queue."""


class ProviderForm(FlaskForm):
    name = StringField("Name")
    kind = RadioField(
        "Kind",
        choices=[
            SelectChoice(ProviderKind.ENTRA.value, "Microsoft Entra ID (one multi-tenant app)"),
            SelectChoice(ProviderKind.OIDC.value, "Another OpenID provider (one force)"),
        ],
        validate_choice=False,
    )
    discovery_url = StringField("Discovery address")
    client_id = StringField("Application (client) id")
    force = StringField("Force")
    email_domains = StringField("Email domains")
    trust_mfa = BooleanField("Trust its multi-factor sign-in")
    mfa_acr = StringField("acr value that means multi-factor")
    enabled = BooleanField("Offer it on the sign-in page")


class TenantForm(FlaskForm):
    tenant_id = StringField("Tenant id")
    tenant_force = StringField("Force")  # not "force": the provider's form on the page has one
    tenant_domains = StringField("Email domains")
