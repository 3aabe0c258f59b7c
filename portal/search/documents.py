"""Turn a published revision into the public document the index holds."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, has_app_context
from markdown_it import MarkdownIt
from sqlalchemy import Select, func, select
from sqlalchemy.orm import selectinload

from ..core.live import is_live, live_revisions
from ..extensions import db
from ..models import CaseStudy, Force, Revision
from .contract import SearchDocument

_markdown = MarkdownIt("commonmark", {"html": False})


# Text made only of these characters, with no line starting as a numbered list item, is
# read by CommonMark as paragraphs (or code) of the same words: its plain text is the text
# with the spaces tidied, got without parsing (most case studies, and 1 ms each saved).
_MAYBE_MARKUP = re.compile(r"[^\w \t\n,.;:'\"?()/%£$@]|_")
_NUMBERED = re.compile(r"^[ \t]*\d+[.)]", re.MULTILINE)


def plain_text(markdown: str) -> str:
    """Return the words of a Markdown text without its markup."""
    text = markdown or ""
    if not _MAYBE_MARKUP.search(text) and not _NUMBERED.search(text):
        return " ".join(text.split())
    return markdown_plain_text(text)


def markdown_plain_text(markdown: str) -> str:
    """Return the words of a Markdown text without its markup, by parsing it."""
    words: list[str] = []
    for token in _markdown.parse(markdown or ""):
        if token.type == "inline":
            words.extend(child.content for child in token.children or () if child.content)
        elif token.type in ("code_block", "fence"):
            words.append(token.content)
    return re.sub(r"\s+", " ", " ".join(words)).strip()


def document_for(revision: Revision) -> SearchDocument:
    """Return the searchable, public fields of a published revision (nothing else)."""
    case_study = revision.case_study
    force = case_study.force
    return SearchDocument(
        case_study_id=case_study.id,
        revision_id=revision.id,
        title=revision.title,
        summary=revision.summary,
        body=plain_text(revision.body),
        themes=tuple(t.slug for t in revision.themes),
        theme_names=tuple(t.name for t in revision.themes),
        partners=tuple(p.name for p in revision.partners),
        force=force.slug,
        force_names=(force.name, *(a.alias for a in force.aliases)),
        outcomes=plain_text(revision.outcomes),
        lessons=plain_text(revision.lessons),
        year=revision.event_date.year if revision.event_date else None,
        published_at=revision.published_at or case_study.created_at,
    )


def _published_revisions() -> Select[Revision]:
    # Live revisions with everything a search document holds: partners, force aliases too.
    return live_revisions().options(
        selectinload(Revision.partners),
        selectinload(Revision.case_study).selectinload(CaseStudy.force).selectinload(Force.aliases),
    )


def documents_for(case_study_ids: Iterable[int]) -> dict[int, SearchDocument]:
    """Return the documents of those case studies that are published now."""
    query = _published_revisions().where(Revision.case_study_id.in_(list(case_study_ids)))
    return {r.case_study_id: document_for(r) for r in db.session.scalars(query)}


def all_documents(
    batch: int = 500, after: int = 0, upto: int | None = None
) -> Iterator[SearchDocument]:
    """Yield the document of every published case study (those with `after` < id <=
    `upto`, when given), in the order of their ids, a batch at a time."""
    last = after
    while True:
        query = _published_revisions().where(Revision.case_study_id > last)
        if upto is not None:
            query = query.where(Revision.case_study_id <= upto)
        revisions = db.session.scalars(query.order_by(Revision.case_study_id).limit(batch)).all()
        if not revisions:
            return
        documents = [document_for(revision) for revision in revisions]
        last = revisions[-1].case_study_id
        db.session.expunge_all()
        yield from documents


def published_count() -> int:
    """How many case studies are published now."""
    ids = select(Revision.case_study_id).join(Revision.case_study).where(is_live())
    return db.session.scalar(select(func.count()).select_from(ids.subquery())) or 0


def split_points(parts: int, total: int) -> list[int]:
    """Return the case-study ids that split the `total` published ones into `parts` runs of
    about the same size (each id the last of its run; the last run is open-ended)."""
    ids = select(Revision.case_study_id).join(Revision.case_study).where(is_live())
    points: list[int] = []
    for part in range(1, parts):
        before = total * part // parts  # case studies in the runs before this point
        if before < 1:
            continue
        at = db.session.scalar(ids.order_by(Revision.case_study_id).offset(before - 1).limit(1))
        if at is not None and (not points or at > points[-1]):
            points.append(at)
    return points


def published_versions() -> dict[int, int]:
    """Return {case study id: published revision id} from the database, the truth."""
    rows = db.session.execute(
        select(Revision.case_study_id, Revision.id).join(Revision.case_study).where(is_live())
    )
    return dict(rows.all())


@dataclass(frozen=True)
class PublishedPart:
    """The documents of the published case studies with `after` < id <= `upto`, read from
    the database in whichever process iterates this: a process building part of the
    search index reads its own (it pickles: the database's address, not a connection)."""

    database: str
    engine_options: dict[str, Any]
    after: int = 0
    upto: int | None = None

    @classmethod
    def runs(cls, points: list[int]) -> list[PublishedPart]:
        """The parts between these split points (`split_points`), from this app's database."""
        database = db.engine.url.render_as_string(hide_password=False)
        options = dict(current_app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
        bounds = [0, *points]
        ends: list[int | None] = [*points, None]
        return [
            cls(database, options, after, upto) for after, upto in zip(bounds, ends, strict=True)
        ]

    def __iter__(self) -> Iterator[SearchDocument]:
        if has_app_context():
            yield from all_documents(after=self.after, upto=self.upto)
            return
        # A process of its own: an app that only reads the database.
        app = Flask(__name__)
        app.config["SQLALCHEMY_DATABASE_URI"] = self.database
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = self.engine_options
        db.init_app(app)
        with app.app_context():
            try:
                yield from all_documents(after=self.after, upto=self.upto)
            finally:
                db.session.remove()
                db.engine.dispose()
