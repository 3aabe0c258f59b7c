"""Atom feeds of newly published case studies: the library, each force, each theme.

Built with ElementTree, so every piece of user text is escaped; characters XML 1.0 cannot
carry at all (control characters) are dropped first. The entry ids are tag: URIs made of
the portal's host and the case study's id, so they stay the same across edits.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

from flask import Blueprint, Response, abort, current_app, g, request
from sqlalchemy import exists, func, select

from ..core.links import external_url
from ..core.live import live_revisions
from ..core.text import looks_like_slug
from ..extensions import db
from ..forces.queries import force_with_slug
from ..models import CaseStudy, Revision, Theme, revision_theme
from .links import user_for_feed_token

bp = Blueprint("feeds", __name__)

ATOM = "http://www.w3.org/2005/Atom"
FEED_SIZE = 50
CONTENT_TYPE = "application/atom+xml; charset=utf-8"
#: The year in every tag: URI; fixed, so ids never change (RFC 4151).
TAG_DATE = "2026"
#: Characters XML 1.0 cannot represent, even escaped.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

ET.register_namespace("", ATOM)


@bp.before_request
def _check_private_link():
    """Refuse a private feed link whose token is forged, old, or for an account not active."""
    token = request.args.get("token")
    if token is None:
        return
    if user_for_feed_token(token) is None:
        abort(403)
    g.feed_token = token


def xml_text(value: str | None) -> str:
    """Return `value` with the characters XML cannot hold removed."""
    return _NOT_XML.sub("", value or "")


@dataclass(frozen=True)
class FeedScope:
    """Which case studies a feed lists, and how it describes itself."""

    key: str  # the tag: URI's specific part, e.g. "feed:force:kent-police"
    title: str
    self_url: str
    alternate_url: str
    force_id: int | None = None
    theme_id: int | None = None

    def filters(self, revision=Revision) -> list:
        conditions = []
        if self.force_id is not None:
            conditions.append(CaseStudy.force_id == self.force_id)
        if self.theme_id is not None:
            conditions.append(
                exists().where(
                    revision_theme.c.revision_id == revision.id,
                    revision_theme.c.theme_id == self.theme_id,
                )
            )
        return conditions


def _published(scope: FeedScope) -> list[Revision]:
    query = (
        live_revisions()
        .where(*scope.filters())
        .order_by(CaseStudy.first_published_at.desc(), CaseStudy.id.desc())
        .limit(FEED_SIZE)
    )
    return list(db.session.scalars(query))


def _last_archived(scope: FeedScope) -> datetime | None:
    # Archiving takes an entry out of the feed: the feed changed, so its date must move too.
    query = select(func.max(CaseStudy.archived_at)).where(CaseStudy.archived_at.is_not(None))
    if scope.force_id is not None:
        query = query.where(CaseStudy.force_id == scope.force_id)
    if scope.theme_id is not None:
        query = query.where(
            exists().where(
                Revision.case_study_id == CaseStudy.id,
                revision_theme.c.revision_id == Revision.id,
                revision_theme.c.theme_id == scope.theme_id,
            )
        )
    return db.session.scalar(query)


def _rfc3339(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat() + "Z"


def _tag(specific: str) -> str:
    host = urlsplit(current_app.config["BASE_URL"]).hostname or "localhost"
    return f"tag:{host},{TAG_DATE}:{specific}"


def _add(parent: ET.Element, name: str, text: str | None = None, **attributes) -> ET.Element:
    element = ET.SubElement(
        parent, f"{{{ATOM}}}{name}", {k: xml_text(v) for k, v in attributes.items()}
    )
    if text is not None:
        element.text = xml_text(text)
    return element


def build_feed(scope: FeedScope, revisions: list[Revision], updated: datetime) -> bytes:
    """Return the Atom document for these revisions, as UTF-8 bytes."""
    feed = ET.Element(f"{{{ATOM}}}feed")
    _add(feed, "id", _tag(scope.key))
    _add(feed, "title", scope.title, type="text")
    _add(feed, "updated", _rfc3339(updated))
    _add(feed, "link", rel="self", type="application/atom+xml", href=scope.self_url)
    _add(feed, "link", rel="alternate", type="text/html", href=scope.alternate_url)
    author = _add(feed, "author")
    _add(author, "name", current_app.config["SITE_NAME"])
    _add(feed, "generator", current_app.config["SITE_NAME"])
    for revision in revisions:
        case_study = revision.case_study
        entry = _add(feed, "entry")
        _add(entry, "id", _tag(f"case-study:{case_study.id}"))
        _add(entry, "title", revision.title, type="text")
        updated = revision.published_at or case_study.first_published_at or case_study.created_at
        _add(entry, "updated", _rfc3339(updated))
        if case_study.first_published_at:
            _add(entry, "published", _rfc3339(case_study.first_published_at))
        link = external_url("casestudies.show", case_study_id=case_study.id, slug=case_study.slug)
        _add(entry, "link", rel="alternate", type="text/html", href=link)
        author = _add(entry, "author")
        _add(author, "name", case_study.force.name)  # the force, never a person's email
        _add(entry, "summary", revision.summary, type="text")
        scheme = external_url("library.index")
        for theme in revision.themes:
            _add(entry, "category", term=theme.slug, label=theme.name, scheme=scheme)
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)


def feed_response(scope: FeedScope) -> Response:
    """Answer with the feed, or 304 when the reader's copy is current."""
    revisions = _published(scope)
    moments = [r.published_at for r in revisions if r.published_at]
    archived = _last_archived(scope)
    if archived:
        moments.append(archived)
    updated = max(moments, default=datetime(2026, 1, 1))  # an empty feed never changed
    body = build_feed(scope, revisions, updated)
    response = Response(body, content_type=CONTENT_TYPE)
    response.set_etag(hashlib.sha256(body).hexdigest()[:32])
    response.last_modified = updated.replace(tzinfo=UTC)
    # Keep it, but ask before using it; a private link's copy is for its reader alone.
    response.headers["Cache-Control"] = "private, no-cache" if g.get("feed_token") else "no-cache"
    response.make_conditional(request)  # a 304 when the reader's copy is current
    return response


def _self_link(endpoint: str, **values) -> str:
    # A private link's feed names itself with its token, so readers keep using it.
    token = g.get("feed_token")
    return external_url(endpoint, **values, **({"token": token} if token else {}))


def _library_filter(**values) -> str:
    return external_url("library.index", sort="newest", **values)


@bp.get("/feed.atom")
def library():
    """The newest case studies in the whole library."""
    site = current_app.config["SITE_NAME"]
    scope = FeedScope(
        key="feed:library",
        title=f"{site}: new case studies",
        self_url=_self_link("feeds.library"),
        alternate_url=_library_filter(),
    )
    return feed_response(scope)


@bp.get("/forces/<slug>/feed.atom")
def force(slug: str):
    """The newest case studies of one force."""
    found = force_with_slug(slug)
    if found is None:
        abort(404)
    scope = FeedScope(
        key=f"feed:force:{found.slug}",
        title=f"{found.name}: new case studies",
        self_url=_self_link("feeds.force", slug=found.slug),
        alternate_url=external_url("forces.show", slug=found.slug),
        force_id=found.id,
    )
    return feed_response(scope)


@bp.get("/themes/<slug>/feed.atom")
def theme(slug: str):
    """The newest case studies on one theme."""
    found = None
    if looks_like_slug(slug):
        found = db.session.scalar(select(Theme).where(Theme.slug == slug))
    if found is None:
        abort(404)
    scope = FeedScope(
        key=f"feed:theme:{found.slug}",
        title=f"{found.name}: new case studies",
        self_url=_self_link("feeds.theme", slug=found.slug),
        alternate_url=_library_filter(theme=found.slug),
        theme_id=found.id,
    )
    return feed_response(scope)
