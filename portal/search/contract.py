"""The contract every search backend implements."""

from __future__ import annotations

from typing import Protocol


class SearchBackend(Protocol):
    """What views, services and commands may ask of the search index."""

    def ensure_index(self) -> None:
        """Create the index if it does not exist yet; leave an existing one alone."""

    def ping(self) -> int:
        """Open the index and return how many documents it holds; raise if unreachable."""
