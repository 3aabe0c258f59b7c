"""How case-study text becomes searchable terms: words, accents, spellings, stems, synonyms."""

from __future__ import annotations

import re

from whoosh.analysis import (
    CharsetFilter,
    Filter,
    LowercaseFilter,
    RegexTokenizer,
    StemFilter,
    StopFilter,
)
from whoosh.support.charset import accent_map

# American spellings people type, folded to the British ones case studies use.
SPELLINGS = {
    "organization": "organisation",
    "organizations": "organisations",
    "color": "colour",
    "behavior": "behaviour",
    "behaviors": "behaviours",
    "center": "centre",
    "centers": "centres",
    "program": "programme",
    "programs": "programmes",
    "defense": "defence",
    "license": "licence",
    "favor": "favour",
    "labor": "labour",
    "neighbor": "neighbour",
    "neighborhood": "neighbourhood",
    "counseling": "counselling",
    "traveling": "travelling",
    "modeling": "modelling",
}
_IZE = re.compile(r"^(\w{3,})iz(e|es|ed|ing|ation|ations|er|ers)$")

# Policing acronyms and what they stand for: either finds the other.
SYNONYMS = {
    "vawg": "violence against women and girls",
    "nte": "night-time economy",
    "da": "domestic abuse",
    "dv": "domestic violence",
    "edi": "equality diversity inclusion",
    "pcc": "police and crime commissioner",
    "bid": "business improvement district",
    "ptsd": "post-traumatic stress",
}


class SpellingFilter(Filter):
    """Fold American spellings (organization, organize) to British ones."""

    def __call__(self, tokens):
        for token in tokens:
            text = token.text
            if text in SPELLINGS:
                token.text = SPELLINGS[text]
            else:
                match = _IZE.match(text)
                if match:
                    token.text = f"{match.group(1)}is{match.group(2)}"
            yield token


def analyzer():
    """Words (hyphenated parts apart), lower case, accents folded, British spelling, stems."""
    return (
        RegexTokenizer(r"\w+")
        | LowercaseFilter()
        | CharsetFilter(accent_map)
        | SpellingFilter()
        | StopFilter(minsize=1)
        | StemFilter(lang="en", cachesize=50_000)
    )


def spelling_analyzer():
    """Whole words, lower case, accents folded: the vocabulary "Did you mean" draws on."""
    return RegexTokenizer(r"[^\W\d_]{3,}") | LowercaseFilter() | CharsetFilter(accent_map)
