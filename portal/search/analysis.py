"""How case-study text becomes searchable terms: words, accents, spellings, stems, synonyms."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from whoosh.analysis import (
    CharsetFilter,
    Filter,
    LowercaseFilter,
    RegexTokenizer,
    StemFilter,
    StopFilter,
)
from whoosh.support.charset import accent_map

# Words that carry no meaning of their own in a question (Snowball's English list, and a
# few more question words); they never decide whether a case study matches.
STOP_WORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing don down during each few for
    from further had has have having he her here hers herself him himself his how i if in into
    is it its itself just may me might more most must my myself no nor not now of off on once
    only or other our ours ourselves out over own same shall she should so some such than that
    the their theirs them themselves then there these they this those through to too under
    until up us very was we were what when where which while who whom why will with would you
    your yours yourself yourselves yet tbd
    """.split()
)

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

# Policing acronyms and what they stand for (written without hyphens: the expansion is a
# phrase over the words' positions).
SYNONYMS = {
    "vawg": "violence against women and girls",
    "nte": "night time economy",
    "da": "domestic abuse",
    "dv": "domestic violence",
    "edi": "equality diversity inclusion",
    "pcc": "police and crime commissioner",
    "bid": "business improvement district",
    "ptsd": "post traumatic stress",
}


class SpellingFilter(Filter):
    """Fold American spellings (organization, organize) to British ones."""

    def __call__(self, tokens: Iterable[Any]) -> Iterator[Any]:
        for token in tokens:
            text = token.text
            if text in SPELLINGS:
                token.text = SPELLINGS[text]
            else:
                match = _IZE.match(text)
                if match:
                    token.text = f"{match.group(1)}is{match.group(2)}"
            yield token


class CompoundFilter(Filter):
    """Index "night-time" as night, time and nighttime, so every way of writing it is found.

    The parts take consecutive positions and the joined word shares the first part's, so
    phrases still match; later words move along by the extra positions.
    """

    def __call__(self, tokens: Iterable[Any]) -> Iterator[Any]:
        shift = 0
        for token in tokens:
            if token.positions:
                token.pos += shift
            if "-" not in token.text:
                yield token
                continue
            parts = [part for part in token.text.split("-") if part]
            start = token.pos if token.positions else 0
            for offset, part in enumerate(parts):
                token.text = part
                if token.positions:
                    token.pos = start + offset
                yield token
            if len(parts) > 1:
                token.text = "".join(parts)
                if token.positions:
                    token.pos = start
                yield token
                shift += len(parts) - 1


_HYPHENATED = re.compile(r"\b(\w+)-(\w+)\b")


def expand_compounds(text: str) -> str:
    """Let a query for night-time find nighttime and night time too."""
    return _HYPHENATED.sub(lambda m: f'({m[1]}{m[2]} OR "{m[1]} {m[2]}")', text)


def analyzer() -> Any:
    """Words, compounds both ways, lower case, accents folded, British spelling, stems."""
    return (
        RegexTokenizer(r"\w+(?:-\w+)*")
        | LowercaseFilter()
        | CharsetFilter(accent_map)
        | StopFilter(minsize=1)
        | CompoundFilter()
        | SpellingFilter()
        | StemFilter(lang="en", cachesize=50_000)
    )


def spelling_analyzer() -> Any:
    """Whole words, lower case, accents folded: the vocabulary "Did you mean" draws on."""
    return RegexTokenizer(r"[^\W\d_]{3,}") | LowercaseFilter() | CharsetFilter(accent_map)


def british(word: str) -> str:
    """Return the British spelling of a lower-case word (organization → organisation)."""
    if word in SPELLINGS:
        return SPELLINGS[word]
    match = _IZE.match(word)
    return f"{match.group(1)}is{match.group(2)}" if match else word


_TOKEN = re.compile(r"\w+(?:-\w+)*")


def normalise_text(text: str) -> str:
    """Prepare text for an engine with its own stemmer (PostgreSQL): British spellings, and
    each compound also written as one word (night-time as nighttime), added at the end so
    the words around it stay next to each other for phrases."""
    joined: list[str] = []

    def one(match: re.Match[str]) -> str:
        word = match.group()
        parts = [british(part) for part in word.lower().split("-") if part]
        if len(parts) > 1:
            joined.append("".join(parts))
            return "-".join(parts)
        return parts[0] if parts and parts[0] != word.lower() else word

    british_text = _TOKEN.sub(one, text)
    return f"{british_text} {' '.join(joined)}" if joined else british_text


_AROUND = "\"'()-"  # kept around a word corrected: quotes, brackets, a leading minus


def corrected(
    text: str,
    fold: Callable[[str], str],
    is_known: Callable[[str], bool],
    options_for: Callable[[str], Iterable[str]],
    usable: Callable[[str], bool] = lambda word: True,
    also: Iterable[str] = (),
    edits: int = 2,
) -> str | None:
    """Return `text` with each unknown word replaced by the closest known spelling (at most
    two edits away; among equals, the first option), or None if nothing changed.

    The backends say what a word folds to, whether the index knows it, which spellings
    are near it (best first) and whether a spelling may be offered. `also`: words known
    whether or not the index holds them (the glossary's short forms: MARAC finds what
    spells it out); they are offered after the index's equally close words. `edits`: how
    far a spelling may be (one for a search that found most of its words: see `sure`).
    """
    from whoosh.support.levenshtein import distance

    extra = {w.lower() for w in also if w.isalpha()}
    changed, out = False, []
    for word in text.split():
        core = word.strip(_AROUND)
        bare = fold(core)
        if (
            len(bare) < 4
            or not bare.isalpha()
            or bare in STOP_WORDS  # never searched, so never misspelt (into is not "info")
            or bare in extra
            or is_known(bare)
        ):
            out.append(word)
            continue
        near = list(options_for(bare))
        near += sorted(w for w in extra if abs(len(w) - len(bare)) <= 2 and w[0] == bare[0])
        close = sorted(
            (
                o
                for o in dict.fromkeys(near)
                # a short form only one edit away (york is not "yoi", youth offending)
                if o != bare and distance(bare, o) <= (1 if o in extra else edits)
            ),
            key=lambda option: distance(bare, option),
        )
        best = next((o for o in close if o in extra or usable(o)), None)
        out.append(word.replace(core, best, 1) if best else word)  # "abusse" → "abuse"
        changed = changed or best is not None
    return " ".join(out) if changed else None


SURE_LETTERS = 5  # a word corrected on its own (not offered) has at least this many letters


def sure(text: str, spelled: str, *, one_edit: bool) -> bool:
    """Whether `spelled` (from `corrected`) may replace `text` without asking: every word
    it changes has at least SURE_LETTERS letters (york is not "work", nor hull "full"), and
    with `one_edit` is one edit away (a search holding most of its words has found
    something: a word it lacks may be a name the library does not hold)."""
    from whoosh.support.levenshtein import distance

    for typed, other in zip(text.split(), spelled.split(), strict=False):
        if typed == other:
            continue
        bare, fixed = typed.strip(_AROUND), other.strip(_AROUND)
        if len(bare) < SURE_LETTERS or (one_edit and distance(bare.lower(), fixed) > 1):
            return False
    return True
