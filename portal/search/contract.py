"""The contract every search backend implements, and the values it takes and returns."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class SearchDocument:
    """The public fields of one published case study, as the index holds them."""

    case_study_id: int
    revision_id: int
    title: str
    summary: str
    body: str  # Markdown already reduced to plain text
    themes: tuple[str, ...]  # theme slugs
    theme_names: tuple[str, ...]
    partners: tuple[str, ...]
    force: str  # force slug
    force_names: tuple[str, ...]  # the force's name and aliases
    outcomes: str
    lessons: str
    year: int | None
    published_at: datetime

    @property
    def excerpt(self) -> str:
        """The opening the snippets are drawn from (never the whole body: speed)."""
        return f"{self.summary} {self.body}"[:EXCERPT_CHARS]


EXCERPT_CHARS = 600


@dataclass(frozen=True)
class SearchQuery:
    text: str = ""
    force: tuple[str, ...] = ()
    theme: tuple[str, ...] = ()
    year: tuple[int, ...] = ()
    partner: tuple[str, ...] = ()
    sort: str = "relevance"  # or "newest"
    page: int = 1
    per_page: int = 20
    partial: bool = False  # still being typed: the last word is also a prefix


@dataclass(frozen=True)
class SearchHit:
    case_study_id: int
    snippet: str  # safe HTML: escaped text with <mark> around matches


@dataclass
class SearchResults:
    hits: list[SearchHit]
    total: int
    facets: dict[str, dict[str, int]] = field(default_factory=dict)
    suggestion: str | None = None
    relaxed: bool = False  # nothing holds every word: these hold most of them


class SearchBackend(Protocol):
    """What views, services and commands may ask of the search index."""

    #: True when the index lives in the portal's database: `write` then joins the caller's
    #: transaction and no outbox is needed; otherwise changes go through the outbox.
    transactional: bool

    def write(self, upserts: Iterable[SearchDocument], removals: Iterable[int]) -> None:
        """Index these and remove those in the caller's transaction (transactional only)."""

    def ensure_index(self) -> None:
        """Create the index if it does not exist yet; leave an existing one alone."""

    def set_synonyms(self, synonyms: dict[str, str]) -> None:
        """Use these short forms and what they stand for from the next query on."""

    def is_current(self) -> bool:
        """Return False when the index must be rebuilt to match this version of the portal."""

    def ping(self) -> int:
        """Open the index and return how many documents it holds; raise if unreachable."""

    def apply(self, upserts: Iterable[SearchDocument], removals: Iterable[int]) -> None:
        """Index or re-index these case studies and remove those; one write."""

    def query(self, query: SearchQuery) -> SearchResults:
        """Return ranked ids, the total, snippets, facet counts and a suggestion; never raise."""

    def ranked_ids(self, query: SearchQuery) -> list[int]:
        """Return the ids of every match, in the order the pages of `query` show them.

        The page and page size are ignored: this is every page at once, for exports.
        Never raises (an empty list instead), as `query` never does.
        """

    def related(self, case_study_id: int, limit: int = 4) -> list[int]:
        """Return case studies most like this one."""

    def rebuild(self, documents: Iterable[SearchDocument]) -> int:
        """Build a new index from scratch and swap it in; searches keep working meanwhile."""

    def indexed_versions(self) -> dict[int, int]:
        """Return {case study id: revision id} for everything in the index."""
