"""Turn a published revision into the public document the index holds."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from markdown_it import MarkdownIt
from sqlalchemy import Select, select
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


def all_documents(batch: int = 500) -> Iterator[SearchDocument]:
    """Yield the document of every published case study, a batch at a time."""
    last = 0
    while True:
        revisions = db.session.scalars(
            _published_revisions()
            .where(Revision.case_study_id > last)
            .order_by(Revision.case_study_id)
            .limit(batch)
        ).all()
        if not revisions:
            return
        for revision in revisions:
            yield document_for(revision)
        last = revisions[-1].case_study_id
        db.session.expunge_all()


def published_versions() -> dict[int, int]:
    """Return {case study id: published revision id} from the database, the truth."""
    rows = db.session.execute(
        select(Revision.case_study_id, Revision.id).join(Revision.case_study).where(is_live())
    )
    return dict(rows.all())
