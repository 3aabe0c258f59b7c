"""What a person typed, as clauses both backends compile the same way.

The typed text is split here once, into clauses that must all match (or, when none match
all of them, most of them): each clause is a choice of options, each option a word or a
phrase. This is where the library's rules about words live, so both backends keep them:

- common words (how, did, the, with...) never decide a match: they are left out of the
  clauses unless nothing else was typed;
- a word written with a hyphen is also its parts in a row and its parts joined (night-time,
  "night time", nighttime), and a joined word the index knows the parts of is also those
  parts in a row; inside quotes, each way of writing a compound is its own phrase;
- an acronym is also the words it stands for, and those words (typed plainly or in quotes)
  are also the acronym;
- an everyday word is also the other words people use for the same thing (kids, children;
  pubs, licensed premises: portal/data/everyday.csv), as *weak* options: they widen what
  a search finds, and a case study that holds the words only through them ranks below
  every case study holding the words as typed (each backend ranks the two tiers apart);
- while the person is still typing, the last word is also a prefix (misog finds misogyny).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TypeVar

from .analysis import STOP_WORDS, british

MAX_PIECES = 32  # words, phrases and ORs read from one query
MAX_CLAUSES = 12  # of which at most this many are searched (common words left out first)
MAX_SPLIT = 24  # a longer word is never tried as two joined words
MAX_LOOKED_UP = 64  # words whose presence in the index is asked, per query
MAX_PHRASE_FORMS = 6  # ways of writing one phrase's compounds that are searched
MIN_PREFIX = 2  # a half-typed last word shorter than this is left out until it grows
MAX_WEAK = 8  # everyday words added to one clause
_PIECE = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_WORD = re.compile(r"[^\W_]+(?:-[^\W_]+)*")


def fold(word: str) -> str:
    """Lower case without accents (Cwmbrân → cwmbran), as both indexes hold words."""
    return "".join(
        c for c in unicodedata.normalize("NFKD", word.lower()) if not unicodedata.combining(c)
    )


def normalise(text: str) -> str:
    """One way of writing each letter before anything else: compatibility forms folded
    (ﬁ → fi, full-width letters), invisible format characters (soft hyphens, joiners)
    dropped, accents and the dot of a Turkish İ taken off. Case is kept (OR is a word)."""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text))
    kept = "".join(
        c for c in decomposed if not unicodedata.combining(c) and unicodedata.category(c) != "Cf"
    )
    return unicodedata.normalize("NFC", kept)


@dataclass(frozen=True)
class Option:
    """One way a clause can match: a word, or words in a row (a phrase)."""

    words: tuple[str, ...]  # lower case, British spelling, no hyphens
    prefix: bool = False  # the one word is still being typed: it is also a prefix
    weak: bool = False  # an everyday word for what was typed: found, but ranked below


@dataclass(frozen=True)
class Clause:
    """Something the case study must hold (or, negated, must not): any one of the options."""

    options: tuple[Option, ...]
    negated: bool = False


@dataclass(frozen=True)
class Question:
    """The clauses of one query, as both backends search them."""

    clauses: tuple[Clause, ...]

    @property
    def weak(self) -> bool:
        """Whether any clause can be met by an everyday word alone (ranked in two tiers)."""
        return any(o.weak for c in self.clauses for o in c.options)

    @property
    def positive(self) -> tuple[Clause, ...]:
        return tuple(c for c in self.clauses if not c.negated)

    @property
    def negative(self) -> tuple[Clause, ...]:
        return tuple(c for c in self.clauses if c.negated)

    @property
    def words(self) -> set[str]:
        return {w for c in self.clauses for o in c.options for w in o.words}


def most(clauses: int) -> int:
    """How many of its clauses a case study must hold when none holds them all: half."""
    return max(1, -(-clauses // 2))


@dataclass
class _Piece:
    kind: str  # "word", "phrase" or "or"
    words: list[str]  # a word's parts (split at hyphens), or a phrase's words
    negated: bool = False
    joined: bool = False  # joined to the piece before by OR


def _pieces(text: str) -> list[_Piece]:
    pieces: list[_Piece] = []
    joining = False
    for match in list(_PIECE.finditer(normalise(text)))[:MAX_PIECES]:
        negated, phrase, raw = bool(match.group(1)), match.group(2), match.group(3)
        if raw is not None:
            if raw == "OR":
                joining = bool(pieces)
                continue
            if raw in ("AND", "NOT"):
                continue
            negated = raw.startswith("-")
            found = _WORD.findall(raw)
            for n, word in enumerate(found):
                parts = [british(p) for p in word.lower().split("-")]
                pieces.append(_Piece("word", parts, negated, joining and n == 0))
        else:
            words = [
                "-".join(british(p) for p in w.lower().split("-"))
                for w in _WORD.findall(phrase or "")
            ]
            if words:
                pieces.append(_Piece("phrase", words, negated, joining))
        joining = False
    return pieces


_T = TypeVar("_T")

MEANINGS = "|"  # between the meanings of one short form (PIP: two programmes, MPs: two bodies)


def meanings(expansion: str) -> list[list[str]]:
    """Each meaning of a short form, as words split as typed words are."""
    return [
        words
        for meaning in expansion.lower().split(MEANINGS)
        if (words := [british(p) for w in _WORD.findall(meaning) for p in w.split("-")])
    ]


Expansions = dict[str, list[tuple[list[str], str]]]
_EXPANSIONS: dict[int, tuple[dict[str, str], int, Expansions]] = {}


def _expansions(synonyms: dict[str, str]) -> Expansions:
    """Each meaning's words with its short form, by the meaning's first word (longest
    first): a glossary of hundreds is looked up, never walked, for every word typed. Kept
    per synonyms dict (the backends replace theirs when the list changes)."""
    kept = _EXPANSIONS.get(id(synonyms))
    if kept is not None and kept[0] is synonyms and kept[1] == len(synonyms):
        return kept[2]
    found: Expansions = {}
    for short, expansion in synonyms.items():
        for parts in meanings(expansion) if short else []:
            found.setdefault(parts[0], []).append((parts, short.lower()))
    for listed in found.values():
        listed.sort(key=lambda item: -len(item[0]))
    if len(_EXPANSIONS) > 8:
        _EXPANSIONS.clear()
    _EXPANSIONS[id(synonyms)] = (synonyms, len(synonyms), found)
    return found


Everyday = dict[str, list[tuple[list[str], tuple[tuple[str, ...], ...]]]]


@cache
def everyday() -> tuple[dict[str, tuple[tuple[str, ...], ...]], Everyday]:
    """The everyday words (portal/data/everyday.csv): for each one-word form (and its
    singular), the group's other forms; and the forms of several words by their first word
    (longest first), each with the group's other forms."""
    raw = resources.files("portal").joinpath("data/everyday.csv").read_text("utf-8")
    single: dict[str, list[tuple[str, ...]]] = {}
    runs: Everyday = {}
    for row in csv.DictReader(io.StringIO(raw)):
        forms = [tuple(words) for words in meanings(row["words"])]
        for form in forms:
            others = tuple(f for f in forms if f != form)
            if len(form) > 1:
                runs.setdefault(form[0], []).append((list(form), others))
                continue
            for key in {form[0], _singular(form[0])}:
                known = single.setdefault(key, [])
                known.extend(f for f in others if f not in known)
    for listed in runs.values():
        listed.sort(key=lambda item: -len(item[0]))
    return {k: tuple(v) for k, v in single.items()}, runs


# Singulars that are words of their own, not the everyday form's (monthlies → monthly).
_OWN_WORDS = frozenset({"monthly", "early", "late", "flat", "wean", "social", "mate", "chip"})


def _singular(word: str) -> str:
    """A plural's singular, roughly (kids → kid, ladies → lady), for looking a word up;
    the word itself when the singular means something else (monthly, early, flat...)."""
    found = _singular_of(word)
    return word if found in _OWN_WORDS else found


def _singular_of(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _weak(forms: Iterable[tuple[str, ...]]) -> list[Option]:
    return [Option(form, weak=True) for form in forms]


def _everyday(parts: list[str]) -> list[Option]:
    """The other everyday words for one typed word, as weak options."""
    return _weak(everyday()[0].get(parts[0], ())) if len(parts) == 1 else []


def parse(
    text: str,
    synonyms: dict[str, str],
    *,
    partial: bool = False,
    known: Callable[[Iterable[str]], set[str]] | None = None,
) -> Question:
    """Return the clauses of `text`.

    `synonyms` maps acronyms to what they stand for; `partial` says the last word is still
    being typed; `known(words)` returns those of the words the index holds (for splitting
    joined compounds such as nighttime).
    """
    pieces = _pieces(text)
    if partial and pieces and pieces[-1].kind == "word" and not pieces[-1].negated:
        typing = pieces[-1]
        if len(typing.words) == 1 and len(typing.words[0]) < MIN_PREFIX:
            pieces.pop()  # one letter: wait for the next (the word before it is complete)
            partial = False
    expansions = _expansions(synonyms)
    stop_all = all(
        p.kind == "word" and len(p.words) == 1 and p.words[0] in STOP_WORDS
        for p in pieces
        if not p.negated
    )
    wanted = sorted(_looked_up(pieces))[:MAX_LOOKED_UP]
    known_words = known(wanted) if known and wanted else set()

    def split(word: str) -> list[tuple[str, str]]:
        return [(a, b) for a, b in _splits(word) if a in known_words and b in known_words][:2]

    clauses: list[tuple[list[Option], bool]] = []
    n = 0
    while n < len(pieces):
        piece = pieces[n]
        last = partial and n == len(pieces) - 1
        run = None if piece.joined else _run(pieces, n, expansions)
        said = None if piece.joined or run else _run(pieces, n, everyday()[1])
        if run is not None or said is not None:
            # Words of several typed in plain words: an acronym's, typed out (in quotes,
            # they are one phrase or the acronym: below), or an everyday phrase (young
            # people, mums and dads). Each word stays a clause of its own (as if there were
            # neither: "most of the words" counts them), each also met by the acronym, or
            # weakly by the group's other forms.
            if run is not None:
                length, extra, weak = run[0], [Option((run[1],))], False
            elif said is not None:
                length, extra, weak = said[0], _weak(said[1]), True
            for typed in pieces[n : n + length]:
                if len(typed.words) == 1 and typed.words[0] in STOP_WORDS and not stop_all:
                    continue
                own = _word_options(typed.words, synonyms, split, prefix=False)
                more = _everyday(typed.words) if weak else []
                clauses.append(([*own, *more, *extra], False))
            n += length
            continue
        if piece.kind == "phrase":
            options = _phrase_options(piece.words, split, known_words)
            options += [
                Option((short,))
                for o in list(options)
                for words, short in expansions.get(o.words[0], [])
                if list(o.words) == words
            ]
            n += 1
        else:
            word = piece.words
            n += 1
            if (
                not stop_all
                and not piece.negated
                and not piece.joined
                and not (n < len(pieces) and pieces[n].joined)
                and len(word) == 1
                and word[0] in STOP_WORDS
            ):
                continue
            options = _word_options(word, synonyms, split, prefix=last and not piece.negated)
            if not piece.negated:  # an exclusion excludes only what was typed
                options += _everyday(word)
        if piece.joined and clauses and not piece.negated and not clauses[-1][1]:
            clauses[-1][0].extend(options)
        else:
            clauses.append((options, piece.negated))
    return Question(tuple(_clause(options, negated) for options, negated in clauses)[:MAX_CLAUSES])


def _clause(options: list[Option], negated: bool) -> Clause:
    """The clause of these options: each once; an everyday word only if it can find what the
    words typed do not (not a word typed, nor words holding one); at most MAX_WEAK of them."""
    strong = [o for o in dict.fromkeys(options) if not o.weak]
    held = {o.words for o in strong}
    words = {o.words[0] for o in strong if len(o.words) == 1 and not o.prefix}
    weak = [
        o
        for o in dict.fromkeys(options)
        # "police officers" for officers finds nothing "officers" does not: left out
        if o.weak and o.words not in held and not words.intersection(o.words)
    ][:MAX_WEAK]
    return Clause(tuple(strong + weak), negated)


def _run(
    pieces: list[_Piece], start: int, known: dict[str, list[tuple[list[str], _T]]]
) -> tuple[int, _T] | None:
    """Find words of several typed in plain words from `start`, longest first: (how many
    pieces, what they stand for)."""
    if pieces[start].kind != "word" or pieces[start].negated:
        return None
    for words, short in known.get(pieces[start].words[0], []):
        if len(words) < 2:
            continue
        got: list[str] = []
        n = start
        while n < len(pieces) and len(got) < len(words):
            piece = pieces[n]
            if piece.kind != "word" or piece.negated or (n > start and piece.joined):
                break
            got.extend(piece.words)
            n += 1
        if got == words:
            return n - start, short
    return None


def _word_options(
    parts: list[str],
    synonyms: dict[str, str],
    split: Callable[[str], list[tuple[str, str]]],
    *,
    prefix: bool,
) -> list[Option]:
    if len(parts) > 1:  # night-time: the parts in a row, and joined
        return [Option(tuple(parts)), Option(("".join(parts),))]
    word = parts[0]
    options = [Option((word,), prefix=prefix and len(word) >= MIN_PREFIX)]
    options += [Option(pair) for pair in split(word)]
    options += [Option(tuple(words)) for words in meanings(synonyms.get(word, ""))]
    return options


def _phrase_options(
    words: list[str], split: Callable[[str], list[tuple[str, str]]], known: set[str]
) -> list[Option]:
    """Each way of writing the phrase's compounds: parts in a row, or joined."""
    if len(words) == 1 and "-" not in words[0]:
        return _word_options([words[0]], {}, split, prefix=False)
    # Every compound as its parts (which also finds "night-time", indexed as its parts).
    pieces = [w.split("-") for w in words]
    for n, word in enumerate(words):
        if "-" not in word:
            pairs = split(word)
            if pairs:
                pieces[n] = list(pairs[0])
    forms = [tuple(p for piece in pieces for p in piece)]
    for n, piece in enumerate(pieces):  # and each compound joined, one at a time
        if len(piece) > 1:
            joined = [p for m, other in enumerate(pieces) for p in (other if m != n else [])]
            at = sum(len(other) for other in pieces[:n])
            joined.insert(at, "".join(piece))
            forms.append(tuple(joined))
    for n in range(len(words) - 1):  # and two words in a row as one ("night time" → nighttime)
        pair = "".join(words[n : n + 2])
        if pair in known:
            forms.append(tuple([*words[:n], pair, *words[n + 2 :]]))
    return list(dict.fromkeys(Option(form) for form in forms))[:MAX_PHRASE_FORMS]


def _splits(word: str) -> list[tuple[str, str]]:
    if not 6 <= len(word) <= MAX_SPLIT or not word.isalpha():
        return []
    return [
        (word[:n], word[n:])
        for n in range(3, len(word) - 2)
        if word[:n] not in STOP_WORDS and word[n:] not in STOP_WORDS
    ]


def _looked_up(pieces: list[_Piece]) -> set[str]:
    """The words whose presence in the index decides how compounds are searched."""
    wanted = {
        h for p in pieces for w in p.words if "-" not in w for pair in _splits(w) for h in pair
    }
    for p in pieces:
        if p.kind == "phrase":
            wanted |= {"".join(p.words[n : n + 2]) for n in range(len(p.words) - 1)}
    return {w for w in wanted if "-" not in w}
