"""Define the portal's data: people, forces, themes, case studies and their revisions."""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime

from flask_login import UserMixin
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .extensions import db


def utcnow() -> datetime:
    """Return the current time in UTC, naive, as every timestamp is stored."""
    return datetime.now(UTC).replace(tzinfo=None)


class Role(enum.StrEnum):
    CONTRIBUTOR = "contributor"
    MODERATOR = "moderator"
    ADMIN = "admin"


class UserStatus(enum.StrEnum):
    PENDING = "pending"  # registered, email not yet confirmed
    ACTIVE = "active"
    DISABLED = "disabled"


class RevisionState(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    PUBLISHED = "published"
    SUPERSEDED = "superseded"  # was published, replaced by a newer approved revision
    REJECTED = "rejected"
    ARCHIVED = "archived"


#: States of the one revision an author may still be working on.
WORKING_STATES = (RevisionState.DRAFT, RevisionState.SUBMITTED)


class Evidence(enum.StrEnum):
    WORKED = "worked"
    PROMISING = "promising"
    UNTESTED = "untested"
    DID_NOT_WORK = "did_not_work"

    @property
    def label(self) -> str:
        return EVIDENCE_LABELS[self]


EVIDENCE_LABELS = {
    Evidence.WORKED: "Worked",
    Evidence.PROMISING: "Promising",
    Evidence.UNTESTED: "New, untested",
    Evidence.DID_NOT_WORK: "Didn't work",
}


def _enum(kind: type[enum.Enum], name: str) -> Enum:
    # Stored as plain strings with a CHECK constraint, so adding a value is a small migration.
    return Enum(
        kind,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=20,
        values_callable=lambda members: [m.value for m in members],
    )


class Force(db.Model):
    __tablename__ = "force"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    nation: Mapped[str] = mapped_column(String(40))
    region: Mapped[str] = mapped_column(String(60))

    aliases: Mapped[list[ForceAlias]] = relationship(
        back_populates="force", cascade="all, delete-orphan", order_by="ForceAlias.alias"
    )

    def __repr__(self) -> str:
        return f"<Force {self.slug}>"


class ForceAlias(db.Model):
    __tablename__ = "force_alias"

    id: Mapped[int] = mapped_column(primary_key=True)
    force_id: Mapped[int] = mapped_column(ForeignKey("force.id", ondelete="CASCADE"), index=True)
    alias: Mapped[str] = mapped_column(String(120))
    # Lower-cased once on write, so lookups in any case use the unique index.
    alias_key: Mapped[str] = mapped_column(String(120), unique=True)

    force: Mapped[Force] = relationship(back_populates="aliases")


class Theme(db.Model):
    __tablename__ = "theme"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

    def __repr__(self) -> str:
        return f"<Theme {self.slug}>"


class Partner(db.Model):
    """A partner organisation named on a case study; kept so later authors get suggestions."""

    __tablename__ = "partner"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(160))
    name_key: Mapped[str] = mapped_column(String(160), unique=True)


class User(UserMixin, db.Model):
    __tablename__ = "user"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(_enum(Role, "role"), default=Role.CONTRIBUTOR)
    status: Mapped[UserStatus] = mapped_column(
        _enum(UserStatus, "user_status"), default=UserStatus.PENDING
    )
    force_id: Mapped[int] = mapped_column(ForeignKey("force.id"), index=True)
    # Bumped to end every session of the user at once (sign-out everywhere, password change).
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_enabled_at: Mapped[datetime | None] = mapped_column(DateTime)
    # The last TOTP time step accepted, so a code can never be used twice.
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    # The key being set up, kept here rather than in the (signed, not encrypted) cookie.
    totp_pending_secret: Mapped[str | None] = mapped_column(String(64))
    # Wrong second-factor codes in a row; too many locks the second step for a while.
    second_factor_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    second_factor_locked_until: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime)
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Opted in to be listed as a HeForShe contact on their force's page, with a role.
    listed_as_contact: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=db.false()
    )
    contact_role: Mapped[str] = mapped_column(String(120), default="", server_default="")
    # Part of every private feed link: bumped when the account is disabled, so links die
    # then and stay dead if it is enabled again (a password change kills them too).
    feed_links_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # The weekly digest of what they follow; unticking it keeps the follows.
    wants_digest: Mapped[bool] = mapped_column(Boolean, default=True, server_default=db.true())
    # When the account was closed (portal/account/closing.py): its name and email are gone.
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)

    force: Mapped[Force] = relationship()
    recovery_codes: Mapped[list[RecoveryCode]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    @property
    def is_active(self) -> bool:  # Flask-Login asks this before signing a user in
        return self.status == UserStatus.ACTIVE

    @property
    def mfa_enabled(self) -> bool:
        return self.totp_enabled_at is not None

    @property
    def needs_mfa(self) -> bool:
        """Moderators and admins must have a second factor before their pages open."""
        return self.role in (Role.MODERATOR, Role.ADMIN)

    def get_id(self) -> str:
        # The session remembers the version it was made with; bumping the user's
        # version makes every earlier session cookie refer to nobody.
        return f"{self.id}:{self.session_version}"

    def has_role(self, *roles: Role) -> bool:
        return self.role in roles

    def __repr__(self) -> str:
        return f"<User {self.id} {self.role}>"


class RecoveryCode(db.Model):
    """A single-use code that stands in for a TOTP code; only its hash is kept."""

    __tablename__ = "recovery_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(255))  # argon2id
    used_at: Mapped[datetime | None] = mapped_column(DateTime)

    user: Mapped[User] = relationship(back_populates="recovery_codes")


class ProviderKind(enum.StrEnum):
    ENTRA = "entra"  # Microsoft Entra ID, one multi-tenant registration; tenants map to forces
    OIDC = "oidc"  # any other OpenID provider: one issuer, one force


class IdentityProvider(db.Model):
    """An OpenID provider people may sign in with. Its client secret is never stored here:
    it comes from the environment or the instance's config (portal.auth.sso.client_secret)."""

    __tablename__ = "identity_provider"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    kind: Mapped[ProviderKind] = mapped_column(_enum(ProviderKind, "provider_kind"))
    discovery_url: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(200))
    # For a provider of one issuer (kind oidc): the force its people belong to, and the
    # email domains its accounts may have (see ProviderTenant.email_domains).
    force_id: Mapped[int | None] = mapped_column(ForeignKey("force.id"))
    email_domains: Mapped[str] = mapped_column(String(500), default="", server_default="")
    # Trust the provider's multi-factor sign-in for moderators and admins: only when the ID
    # token says so (amr holds "mfa", or acr is mfa_acr).
    trust_mfa: Mapped[bool] = mapped_column(Boolean, default=False, server_default=db.false())
    mfa_acr: Mapped[str] = mapped_column(String(200), default="", server_default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=db.true())
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    force: Mapped[Force | None] = relationship()
    tenants: Mapped[list[ProviderTenant]] = relationship(
        back_populates="provider", cascade="all, delete-orphan", order_by="ProviderTenant.id"
    )


class ProviderTenant(db.Model):
    """An Entra ID tenant allowed to sign in, and the force its people belong to."""

    __tablename__ = "provider_tenant"
    __table_args__ = (UniqueConstraint("provider_id", "tenant_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(
        ForeignKey("identity_provider.id", ondelete="CASCADE"), index=True
    )
    tenant_id: Mapped[str] = mapped_column(String(36))  # a GUID, lower case
    force_id: Mapped[int] = mapped_column(ForeignKey("force.id"))
    # The email domains its people's accounts may have, space-separated ("kent.police.uk"):
    # a tenant's admin can set any email claim, so a tenant may make or link only
    # accounts of the domains it owns, never another force's address.
    email_domains: Mapped[str] = mapped_column(String(500), default="", server_default="")

    provider: Mapped[IdentityProvider] = relationship(back_populates="tenants")
    force: Mapped[Force] = relationship()


class ExternalIdentity(db.Model):
    """A person's account at a provider, linked to their portal account.

    Keyed by what the provider never changes: the issuer and subject (for Entra ID, the
    tenant and the object id), never by the email claim, which a tenant's admin can set.
    """

    __tablename__ = "external_identity"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    provider_id: Mapped[int | None] = mapped_column(
        ForeignKey("identity_provider.id", ondelete="SET NULL"), index=True
    )
    issuer: Mapped[str] = mapped_column(String(300))  # "entra:<tid>" or the issuer URL
    subject: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)

    user: Mapped[User] = relationship()
    provider: Mapped[IdentityProvider | None] = relationship()


class SignInState(db.Model):
    """A sign-in's `state` once it has come back: a second use of it is refused."""

    __tablename__ = "sign_in_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    used_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


revision_theme = Table(
    "revision_theme",
    db.metadata,
    Column("revision_id", ForeignKey("revision.id", ondelete="CASCADE"), primary_key=True),
    Column("theme_id", ForeignKey("theme.id"), primary_key=True, index=True),
)

revision_partner = Table(
    "revision_partner",
    db.metadata,
    Column("revision_id", ForeignKey("revision.id", ondelete="CASCADE"), primary_key=True),
    Column("partner_id", ForeignKey("partner.id"), primary_key=True, index=True),
)


class CaseStudy(db.Model):
    """The stable identity of a case study; its content lives in revisions."""

    __tablename__ = "case_study"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(120))
    force_id: Mapped[int] = mapped_column(ForeignKey("force.id"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # When it first reached the library; later approved edits keep this date.
    first_published_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    archived_at: Mapped[datetime | None] = mapped_column(DateTime)

    force: Mapped[Force] = relationship()
    author: Mapped[User | None] = relationship()
    revisions: Mapped[list[Revision]] = relationship(
        back_populates="case_study", order_by="Revision.number", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"<CaseStudy {self.id}>"


class Revision(db.Model):
    """One version of a case study's content, moving through the moderation lifecycle."""

    __tablename__ = "revision"
    __table_args__ = (
        UniqueConstraint("case_study_id", "number"),
        # At most one published and at most one working revision per case study,
        # enforced by the database whatever the code does.
        Index(
            "uq_revision_one_published",
            "case_study_id",
            unique=True,
            sqlite_where=db.text("state = 'published'"),
            postgresql_where=db.text("state = 'published'"),
        ),
        Index(
            "uq_revision_one_working",
            "case_study_id",
            unique=True,
            sqlite_where=db.text("state IN ('draft', 'submitted')"),
            postgresql_where=db.text("state IN ('draft', 'submitted')"),
        ),
        Index("ix_revision_state_published_at", "state", "published_at"),
        # The newest edit of a published version (closing an account hands its contact
        # over in place): one index seek for the reports' version (reports/kept.py).
        Index("ix_revision_state_updated_at", "state", "updated_at"),
        # A page of search hits looks its revisions up by case study (the partial indexes
        # above can't serve a query whose state is a bound parameter).
        Index("ix_revision_case_study_id_state", "case_study_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_study_id: Mapped[int] = mapped_column(ForeignKey("case_study.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[RevisionState] = mapped_column(
        _enum(RevisionState, "revision_state"), default=RevisionState.DRAFT
    )
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    event_date: Mapped[date | None] = mapped_column(Date)
    outcomes: Mapped[str] = mapped_column(Text, default="")
    lessons: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[Evidence | None] = mapped_column(_enum(Evidence, "evidence"))
    contact_name: Mapped[str] = mapped_column(String(120), default="")
    contact_email: Mapped[str] = mapped_column(String(254), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime)
    published_at: Mapped[datetime | None] = mapped_column(DateTime)
    # When the author last ticked the sensitivity checklist (required to submit).
    checklist_confirmed_at: Mapped[datetime | None] = mapped_column(DateTime)

    case_study: Mapped[CaseStudy] = relationship(back_populates="revisions")
    themes: Mapped[list[Theme]] = relationship(secondary=revision_theme, order_by="Theme.position")
    partners: Mapped[list[Partner]] = relationship(
        secondary=revision_partner, order_by="Partner.name"
    )
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="revision", cascade="all, delete-orphan", order_by="Attachment.id"
    )

    def __repr__(self) -> str:
        return f"<Revision {self.case_study_id}.{self.number} {self.state}>"


class Attachment(db.Model):
    """A file on a revision; its bytes are in the database so app servers share no disk."""

    __tablename__ = "attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    revision_id: Mapped[int] = mapped_column(
        ForeignKey("revision.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(120))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    revision: Mapped[Revision] = relationship(back_populates="attachments")


class ModerationAction(enum.StrEnum):
    SUBMITTED = "submitted"
    WITHDRAWN = "withdrawn"
    APPROVED = "approved"
    CHANGES_REQUESTED = "changes_requested"
    REJECTED = "rejected"
    ARCHIVED = "archived"


class ModerationEvent(db.Model):
    """An append-only record of a step in a case study's moderation, with its comment."""

    __tablename__ = "moderation_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_study_id: Mapped[int] = mapped_column(
        ForeignKey("case_study.id", ondelete="CASCADE"), index=True
    )
    revision_id: Mapped[int] = mapped_column(
        ForeignKey("revision.id", ondelete="CASCADE"), index=True
    )
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    action: Mapped[ModerationAction] = mapped_column(_enum(ModerationAction, "moderation_action"))
    comment: Mapped[str] = mapped_column(Text, default="")
    # On submission: the content as submitted, so the next submission can be compared with it.
    snapshot: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    actor: Mapped[User | None] = relationship()
    revision: Mapped[Revision] = relationship()


class Synonym(db.Model):
    """A short form people search for and the words it stands for (admins edit the list)."""

    __tablename__ = "synonym"

    id: Mapped[int] = mapped_column(primary_key=True)
    term: Mapped[str] = mapped_column(String(40), unique=True)  # lower case, one word
    # What it stands for; several meanings apart with "|" (PIP: two programmes).
    expansion: Mapped[str] = mapped_column(String(200))
    # Where it came from: the policing glossary's public source, or "" (an admin added it).
    source: Mapped[str] = mapped_column(String(160), default="", server_default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class SearchOutbox(db.Model):
    """A case study whose search-index entry must be brought up to date.

    Written in the same transaction as the change, applied after the commit, retried
    until applied: the database stays the truth, the index follows it.
    """

    __tablename__ = "search_outbox"
    # Ids are never reused (SQLite would otherwise hand a deleted row's id to a new one,
    # and a process deleting the rows it applied could delete a change it never saw).
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    case_study_id: Mapped[int] = mapped_column(Integer, index=True)
    queued_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SearchLog(db.Model):
    """One library search, kept a while for the admins' search insights (portal/insights).

    Only what was searched (normalised, and never an email address or a phone number), how
    many results it found and whether one was opened: no user, session or address, and the
    time to the hour only. Rows older than PORTAL_SEARCH_INSIGHTS_DAYS are deleted.
    """

    __tablename__ = "search_log"
    # Ids are never reused: a link made for a deleted row can never mark a newer one.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    query_text: Mapped[str] = mapped_column(String(200))
    results: Mapped[int] = mapped_column(Integer)
    opened: Mapped[bool] = mapped_column(Boolean, default=False, server_default=db.false())


class AuditEvent(db.Model):
    """An append-only record of who did what to which object, and when."""

    __tablename__ = "audit_event"
    __table_args__ = (
        # The audit log's person filter and "deleted by this user" look events up by what
        # they were done to: without it, each of those lookups read the whole table.
        Index("ix_audit_event_target_type_target_id", "target_type", "target_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    action: Mapped[str] = mapped_column(String(60), index=True)
    target_type: Mapped[str | None] = mapped_column(String(40))
    target_id: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str] = mapped_column(Text, default="")
    ip_address: Mapped[str | None] = mapped_column(String(45))

    actor: Mapped[User | None] = relationship()


class Follow(db.Model):
    """A user following a force or a theme (exactly one of the two)."""

    __tablename__ = "follow"
    __table_args__ = (
        UniqueConstraint("user_id", "force_id", name="uq_follow_user_force"),
        UniqueConstraint("user_id", "theme_id", name="uq_follow_user_theme"),
        CheckConstraint("(force_id IS NULL) <> (theme_id IS NULL)", name="one_target"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    force_id: Mapped[int | None] = mapped_column(
        ForeignKey("force.id", ondelete="CASCADE"), index=True
    )
    theme_id: Mapped[int | None] = mapped_column(
        ForeignKey("theme.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    user: Mapped[User] = relationship()
    force: Mapped[Force | None] = relationship()
    theme: Mapped[Theme | None] = relationship()


class DigestItem(db.Model):
    """A case study that went to a user in a digest: it never goes to them again."""

    __tablename__ = "digest_item"
    __table_args__ = (
        UniqueConstraint("user_id", "case_study_id", name="uq_digest_item_user_case_study"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    case_study_id: Mapped[int] = mapped_column(
        ForeignKey("case_study.id", ondelete="CASCADE"), index=True
    )
    sent_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class AdoptionKind(enum.StrEnum):
    ADOPTED = "adopted"  # taken up as it is
    ADAPTED = "adapted"  # taken up with changes

    @property
    def label(self) -> str:
        return "Adopted" if self is AdoptionKind.ADOPTED else "Adapted"


class Adoption(db.Model):
    """A force that has adopted or adapted a case study: whether shared practice spreads."""

    __tablename__ = "adoption"
    __table_args__ = (
        UniqueConstraint("case_study_id", "force_id", name="uq_adoption_case_study_force"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_study_id: Mapped[int] = mapped_column(ForeignKey("case_study.id", ondelete="CASCADE"))
    force_id: Mapped[int] = mapped_column(ForeignKey("force.id"), index=True)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    kind: Mapped[AdoptionKind] = mapped_column(_enum(AdoptionKind, "adoption_kind"))
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    case_study: Mapped[CaseStudy] = relationship()
    force: Mapped[Force] = relationship()
    recorded_by: Mapped[User | None] = relationship()


class MailState(enum.StrEnum):
    WAITING = "waiting"  # to be tried (again) at next_attempt_at
    SENDING = "sending"  # a worker holds it until lease_until; not yet handed to the server
    HANDED_OVER = "handed_over"  # the server was given the whole message; its answer not yet read
    SENT = "sent"  # the server accepted it
    UNCONFIRMED = "unconfirmed"  # a worker stopped while the server was answering: never resent
    FAILED = "failed"  # refused for good (5xx) or out of tries: an admin may resend


class MailMessage(db.Model):
    """One email, recorded in the transaction of the change that causes it; delivered by a job.

    The row is the truth: a rollback takes the message with it, a queue outage only delays
    it (a sweep every minute finds what is due), and its state says whether the server was
    ever given it, so a retry never sends twice what a server accepted.
    """

    __tablename__ = "mail_message"
    __table_args__ = (
        Index("ix_mail_message_state_next_attempt_at", "state", "next_attempt_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    message_id: Mapped[str] = mapped_column(String(200), unique=True)  # the Message-ID header
    to: Mapped[str] = mapped_column(String(320))
    reply_to: Mapped[str | None] = mapped_column(String(400))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[MailState] = mapped_column(_enum(MailState, "mail_state"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)


class ReportFileState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ReportFile(db.Model):
    """The annual report of one year as a PDF, made by a job; kept per version of its data.

    One row per year and `data_version` (a digest of everything the report shows): the
    unique constraint is what makes thirty people pressing "Make the PDF" at once queue one
    job. A row moves QUEUED -> RUNNING (claimed by a conditional UPDATE, `attempts` counting
    the claims) -> DONE or FAILED; a failed row, or one whose worker stopped, is queued again
    in place (portal/reports/services.py).
    """

    __tablename__ = "report_file"
    __table_args__ = (
        UniqueConstraint("year", "data_version", name="uq_report_file_year_data_version"),
        # Ids are never reused: a download link names its file by id.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column(Integer)
    data_version: Mapped[str] = mapped_column(String(64))  # a digest of what the report shows
    state: Mapped[ReportFileState] = mapped_column(_enum(ReportFileState, "report_file_state"))
    progress: Mapped[int] = mapped_column(Integer, default=0)  # percent
    requested_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    error: Mapped[str] = mapped_column(String(500), default="")
    # Times a worker claimed it: each run writes only while the row is still its own.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    pages: Mapped[int] = mapped_column(Integer, default=0)
    size: Mapped[int] = mapped_column(Integer, default=0)  # bytes of the PDF
    # Read only by the download: polling the state never loads megabytes.
    pdf: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)


class ScheduledRun(db.Model):
    """The latest time slot a scheduled job was run for: a slot the worker missed (stopped,
    restarted, or its minute's check came late) runs at the next check, once."""

    __tablename__ = "scheduled_run"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    slot_at: Mapped[datetime] = mapped_column(DateTime)  # UTC
