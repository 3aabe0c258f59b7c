"""Tidy what visitors type into search boxes."""

import unicodedata

MAX_QUERY = 200


def clean_query(text: str) -> str:
    """Return `text` without control characters, spaces collapsed, at most 200 characters."""
    kept = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cs"))
    return " ".join(kept.split())[:MAX_QUERY]
