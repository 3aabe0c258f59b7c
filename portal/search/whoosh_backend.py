"""The embedded search backend: a Whoosh index in the instance folder."""

from __future__ import annotations

from pathlib import Path

from whoosh import index
from whoosh.analysis import StemmingAnalyzer
from whoosh.fields import DATETIME, ID, KEYWORD, NUMERIC, TEXT, Schema


def build_schema() -> Schema:
    """Return the index schema: public fields of published revisions only."""
    return Schema(
        case_study_id=NUMERIC(int, stored=True, unique=True, signed=False),
        title=TEXT(analyzer=StemmingAnalyzer(), stored=True, field_boost=3.0),
        content=TEXT(analyzer=StemmingAnalyzer()),
        force=ID(stored=True),
        themes=KEYWORD(stored=True, commas=True),
        year=NUMERIC(int, stored=True),
        published_at=DATETIME(stored=True, sortable=True),
    )


class WhooshBackend:
    """Search over a Whoosh index stored at `path`."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def ensure_index(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        if not index.exists_in(str(self.path)):
            index.create_in(str(self.path), build_schema())

    def ping(self) -> int:
        ix = index.open_dir(str(self.path))
        with ix.searcher() as searcher:
            return searcher.doc_count()
