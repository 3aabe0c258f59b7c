"""Snippets for the hits on a page: a short passage with the query's words in <mark>.

Whoosh's highlighter runs the whole analyser chain over every token of every hit; this one
analyses each distinct word once per process and looks the rest up, which is what keeps
twenty snippets to a millisecond or two.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from markupsafe import escape
from whoosh import query as wq

from .analysis import analyzer

WORD = re.compile(r"\w+(?:-\w+)*")  # the analyser's tokenizer
SNIPPET_CHARS = 220
LEAD_CHARS = 60  # context shown before the first match

_analyse = analyzer()


@lru_cache(maxsize=100_000)
def terms_of(word: str) -> frozenset[str]:
    """Return the index terms one written word becomes (stems, compound parts)."""
    return frozenset(token.text for token in _analyse(word))


def positive_terms(node: Any) -> set[str]:
    """Return the terms a parsed query looks for, leaving out excluded ones."""
    if node is None:
        return set()
    if isinstance(node, wq.Term):
        return {str(node.text)}
    if isinstance(node, wq.Phrase):
        return {str(word) for word in node.words}
    if isinstance(node, wq.AndNot):
        return positive_terms(node.a)
    if isinstance(node, wq.Not):
        return set()
    found: set[str] = set()
    for child in node.children():
        found |= positive_terms(child)
    return found


def snippet(text: str, terms: set[str]) -> str | None:
    """Return escaped HTML of the passage around the first match, or None if none matches."""
    if not terms or not text:
        return None
    words = list(WORD.finditer(text))
    marked = [m for m in words if terms_of(m.group()) & terms]
    if not marked:
        return None
    start = max(0, marked[0].start() - LEAD_CHARS)
    if start:  # begin at a word
        start = next((m.start() for m in words if m.start() >= start), marked[0].start())
    end = min(len(text), start + SNIPPET_CHARS)
    if end < len(text):  # end after a whole word
        end = max((m.end() for m in words if m.end() <= end), default=end)
    parts, at = [], start
    for m in marked:
        if m.start() < start or m.end() > end:
            continue
        parts.append(str(escape(text[at : m.start()])))
        parts.append(f"<mark>{escape(m.group())}</mark>")
        at = m.end()
    parts.append(str(escape(text[at:end])))
    html = "".join(parts).strip()
    return f"{'… ' if start else ''}{html}{' …' if end < len(text) else ''}"
