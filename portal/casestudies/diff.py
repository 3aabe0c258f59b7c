"""Compare two versions of a case study, field by field: lines, then words inside them.

Anything an author can send is compared in bounded time. Lines are matched with patience
diff (lines that occur once on each side anchor the match; the stretches between anchors are
compared the same way; a stretch with no such line gets a longest common subsequence, by
Hunt and Szymanski, when its matching pairs are few enough), then words inside each run of
changed lines. A changed line (a paragraph) that keeps most of its words is shown once, with
the removed and added words marked inside it; one rewritten beyond that, split or joined is
shown removed, then added, with the words that differ marked. Every step counts what it
looks at against one budget per comparison; past it, what is left is shown as removed and
added, which is still correct, only less fine. Unchanged stretches fold to a count. A field
with more changed lines than a moderator could read is shown whole, before and after, marked
"too large to compare". difflib is not used: its matcher (and ndiff above it) grows faster
than the square of the input on repetitive text.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

FIELDS = (
    ("title", "Title"),
    ("summary", "Summary"),
    ("body", "What you did"),
    ("themes", "Themes"),
    ("partners", "Partners"),
    ("event_date", "Date"),
    ("outcomes", "Outcomes"),
    ("lessons", "Lessons learned"),
    ("evidence", "Evidence of impact"),
    ("contact_name", "Contact name"),
    ("contact_email", "Contact email"),
    ("attachments", "Attachments"),
)

#: Items (lines or words) the matcher may look at in one comparison of two versions.
BUDGET = 250_000
#: Lines shown for one field at most (changes and their context).
MAX_SHOWN_LINES = 1_500
#: Unchanged lines kept either side of a change; longer stretches fold to a count.
CONTEXT = 2
#: A changed line is shown once, its words marked inside it, when at least this share of
#: its characters (on both sides together) is unchanged; otherwise removed, then added.
INLINE_SHARE = 0.5

#: What a piece of a line is: unchanged, removed (only in the old version), added (only new).
SAME, REMOVED, ADDED = "", "-", "+"

# A word or a sign with the spaces after it, so spaces never anchor a match on their own.
_WORDS = re.compile(r"\n|\w+[^\S\n]*|[^\w\s][^\S\n]*|[^\S\n]+")


@dataclass(frozen=True)
class DiffLine:
    """One line of a comparison.

    `op` is " " (unchanged), "-" (removed), "+" (added), "~" (changed: one line with its
    removed and added words inside it) or "…" (`folded` unchanged lines not shown). `parts`
    is the line's text in pieces, each marked SAME, REMOVED or ADDED: a removed line's
    changed words are REMOVED, an added line's ADDED, and a changed line holds both.
    """

    op: str
    parts: tuple[tuple[str, str], ...] = ()
    folded: int = 0

    @property
    def text(self) -> str:
        return "".join(text for _, text in self.parts)

    @property
    def before(self) -> str:
        """The line as it was (for a changed line: its unchanged and removed pieces)."""
        return "".join(text for kind, text in self.parts if kind != ADDED)

    @property
    def after(self) -> str:
        """The line as it is now (for a changed line: its unchanged and added pieces)."""
        return "".join(text for kind, text in self.parts if kind != REMOVED)

    @property
    def shown(self) -> tuple[tuple[str, str], ...]:
        """The pieces as a page shows them: spaces around a marked piece left unmarked, a
        space between a removed and an added piece, and a change of spacing alone shown as
        the new spacing."""
        shown = _Pieces()
        for kind, text in self.parts:
            word = text.strip()
            if kind == SAME or not word:
                if kind != REMOVED or self.op != "~":
                    shown.add(SAME, text)
                continue
            start = text.index(word[0])
            shown.add(SAME, text[:start])
            if shown.last == REMOVED and kind == ADDED:
                shown.add(SAME, " ")  # "day evening", not "dayevening"
            shown.add(kind, word)
            shown.add(SAME, text[start + len(word) :])
        return shown.done()


class _Pieces:
    """Marked pieces of text, added one at a time; neighbours of one kind become one piece.

    The texts of the piece being built are kept in a list and joined once it is finished:
    adding to a string would copy it each time, and a line of many words would cost the
    square of its length.
    """

    def __init__(self) -> None:
        self.finished: list[tuple[str, str]] = []
        self.last: str | None = None  # the kind of the piece being built
        self.texts: list[str] = []  # its texts

    def add(self, kind: str, text: str) -> None:
        if not text:
            return
        if kind != self.last:
            if self.last is not None:
                self.finished.append((self.last, "".join(self.texts)))
                self.texts.clear()
            self.last = kind
        self.texts.append(text)

    def done(self) -> tuple[tuple[str, str], ...]:
        if self.last is None:
            return ()
        return (*self.finished, (self.last, "".join(self.texts)))


@dataclass(frozen=True)
class FieldDiff:
    label: str
    lines: tuple[DiffLine, ...]
    #: Set when the field was too large to compare: both versions are shown whole.
    too_large: bool = False
    before: str = ""
    after: str = ""

    @property
    def inline(self) -> bool:
        """Whether any line is shown once with its removed and added words inside it."""
        return any(line.op == "~" for line in self.lines)


class _Budget:
    def __init__(self, items: int) -> None:
        self.left = items

    def spend(self, items: int) -> bool:
        self.left -= items
        return self.left >= 0


def _lines(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return str(value).splitlines()


def compare(
    old: dict, new: dict, *, budget: int = BUDGET, context: int = CONTEXT
) -> list[FieldDiff]:
    """Return the changed fields, each with its removed, added and nearby unchanged lines."""
    spending = _Budget(budget)
    changes = []
    for name, label in FIELDS:
        before, after = _lines(old.get(name)), _lines(new.get(name))
        if before != after:
            changes.append(_compare_field(label, before, after, spending, context))
    return changes


def _compare_field(
    label: str, before: list[str], after: list[str], budget: _Budget, context: int
) -> FieldDiff:
    runs = list(_opcodes(before, after, budget))
    if sum(len(old) + len(new) for tag, old, new in runs if tag != "=") > MAX_SHOWN_LINES:
        return FieldDiff(
            label, (), too_large=True, before="\n".join(before), after="\n".join(after)
        )
    lines: list[DiffLine] = []
    for tag, old, new in runs:
        if tag == "=":
            lines.extend(DiffLine(" ", ((SAME, line),)) for line in old)
        elif old and new and budget.left > 0:
            lines.extend(_word_diff(old, new, budget))
        else:
            lines.extend(DiffLine("-", ((SAME, line),)) for line in old)
            lines.extend(DiffLine("+", ((SAME, line),)) for line in new)
    return FieldDiff(label, tuple(_fold(lines, context)))


def _opcodes(a: Sequence, b: Sequence, budget: _Budget, key=None):
    """Yield ("=" or "~", a's items, b's items) in order: equal runs and changed runs.

    Items are compared by `key(item)` when a key is given.
    """
    i = j = 0
    run = 0  # matches seen in a row, not yet yielded
    matches = _matches([*map(key, a)], [*map(key, b)], budget) if key else _matches(a, b, budget)
    for mi, mj in [*matches, (len(a), len(b))]:
        if mi == i + run and mj == j + run and mi < len(a):
            run += 1
            continue
        if run:
            yield "=", a[i : i + run], b[j : j + run]
            i, j = i + run, j + run
        if i < mi or j < mj:
            yield "~", a[i:mi], b[j:mj]
        i, j, run = mi, mj, 1


def _matches(a: Sequence, b: Sequence, budget: _Budget) -> list[tuple[int, int]]:
    """Return pairs (i, j) with a[i] == b[j], rising in both: a patience diff."""
    found: list[tuple[int, int]] = []
    stack = [(0, len(a), 0, len(b))]
    while stack:
        alo, ahi, blo, bhi = stack.pop()
        while alo < ahi and blo < bhi and a[alo] == b[blo]:
            found.append((alo, blo))
            alo, blo = alo + 1, blo + 1
        while alo < ahi and blo < bhi and a[ahi - 1] == b[bhi - 1]:
            ahi, bhi = ahi - 1, bhi - 1
            found.append((ahi, bhi))
        if alo == ahi or blo == bhi or not budget.spend((ahi - alo) + (bhi - blo)):
            continue
        anchors = _unique_common(a, alo, ahi, b, blo, bhi)
        if not anchors:
            # Nothing occurs once on each side: the longest common subsequence, if it is
            # affordable, else the whole stretch is a change.
            found.extend(_common_subsequence(a, alo, ahi, b, blo, bhi, budget))
            continue
        found.extend(anchors)
        edges = [(alo - 1, blo - 1), *anchors, (ahi, bhi)]
        for (i1, j1), (i2, j2) in zip(edges, edges[1:], strict=False):
            if i1 + 1 < i2 and j1 + 1 < j2:
                stack.append((i1 + 1, i2, j1 + 1, j2))
    found.sort()
    return found


def _unique_common(a, alo, ahi, b, blo, bhi) -> list[tuple[int, int]]:
    """Return the longest rising chain of items found exactly once on each side."""
    count_a = Counter(a[alo:ahi])
    count_b = Counter(b[blo:bhi])
    where_a = {item: i for i, item in enumerate(a[alo:ahi], alo) if count_a[item] == 1}
    return _rising_chain(
        (where_a[item], j)
        for j, item in enumerate(b[blo:bhi], blo)
        if count_b[item] == 1 and item in where_a
    )


def _common_subsequence(a, alo, ahi, b, blo, bhi, budget: _Budget) -> list[tuple[int, int]]:
    """Return a longest common subsequence (Hunt-Szymanski), or nothing past the budget."""
    where: dict = {}
    for i in range(alo, ahi):
        where.setdefault(a[i], []).append(i)
    pairs = sum(len(where.get(b[j], ())) for j in range(blo, bhi))
    if not budget.spend(pairs):
        return []
    # Within one j, a's positions from last to first: no chain can take two of them.
    return _rising_chain((i, j) for j in range(blo, bhi) for i in reversed(where.get(b[j], ())))


def _rising_chain(pairs) -> list[tuple[int, int]]:
    """Return the longest chain of pairs (taken in b's order) rising in a (patience sorting)."""
    pairs = list(pairs)
    tops: list[int] = []
    top_index: list[int] = []
    previous: list[int] = []
    for n, (i, _) in enumerate(pairs):
        pile = bisect_left(tops, i)
        previous.append(top_index[pile - 1] if pile else -1)
        if pile == len(tops):
            tops.append(i)
            top_index.append(n)
        else:
            tops[pile] = i
            top_index[pile] = n
    chain = []
    n = top_index[-1] if top_index else -1
    while n >= 0:
        chain.append(pairs[n])
        n = previous[n]
    return chain[::-1]


def _word_diff(old: Sequence[str], new: Sequence[str], budget: _Budget) -> list[DiffLine]:
    """Return a run of changed lines compared word by word.

    The words of both sides become one sequence of pieces (unchanged, removed, added), cut
    into lines where both sides break; each such line is shown once with its changes inside
    (see _lines_of).
    """
    a, b = "\n".join(old), "\n".join(new)
    # The same start and end are found at C speed and never split into words, so a long
    # paragraph with one word changed costs little; each is cut back to a word boundary.
    head = _common_prefix(a, b)
    head = max(a.rfind(" ", 0, head), a.rfind("\n", 0, head)) + 1
    start = len(a) - _common_prefix(a[head:][::-1], b[head:][::-1])
    breaks = [x for x in (a.find(" ", start), a.find("\n", start)) if x >= 0]
    tail = len(a) - min(breaks) if breaks else 0
    # Pieces in order, neighbours of one kind not yet joined (_lines_of joins them).
    pieces: list[tuple[str, str]] = [(SAME, a[:head])]
    middle_a, middle_b = a[head : len(a) - tail], b[head : len(b) - tail]
    # A word is the same word whatever follows it: "20." and "20 and" share "20".
    for tag, old_words, new_words in _opcodes(
        _WORDS.findall(middle_a), _WORDS.findall(middle_b), budget, key=_bare
    ):
        was, now = "".join(old_words), "".join(new_words)
        if tag != "=" or (was != now and not budget.spend(len(old_words) + len(new_words))):
            # Changed words; or the same words spaced differently, with no budget left to
            # mark each word's spacing (a piece a word): removed and added, as a rewrite is.
            pieces += [(REMOVED, was), (ADDED, now)]
        elif was == now:
            pieces.append((SAME, was))
        else:  # the same words, spaced differently: each word's spacing marked
            for old_word, new_word in zip(old_words, new_words, strict=True):
                if old_word == new_word:
                    pieces.append((SAME, old_word))
                else:
                    word = _bare(old_word)
                    pieces += [
                        (SAME, word),
                        (REMOVED, old_word[len(word) :]),
                        (ADDED, new_word[len(word) :]),
                    ]
    pieces.append((SAME, a[len(a) - tail :]))
    return _lines_of(pieces)


def _lines_of(pieces: Sequence[tuple[str, str]]) -> list[DiffLine]:
    """Cut a run's pieces into lines where both sides break, and show each line.

    A line that keeps at least INLINE_SHARE of its characters is one changed line ("~").
    One that is split or joined (a break on one side only), or mostly rewritten, is shown
    as its old lines removed, then its new lines added, with the words that differ marked.
    """
    building = [_Pieces()]
    for kind, text in pieces:
        if kind != SAME:
            building[-1].add(kind, text)
            continue
        first, *rest = text.split("\n")
        building[-1].add(SAME, first)
        for piece in rest:
            building.append(_Pieces())
            building[-1].add(SAME, piece)
    lines: list[DiffLine] = []
    for group in map(_Pieces.done, building):
        changed = [text for kind, text in group if kind != SAME]
        if not changed:
            lines.append(DiffLine(" ", group))
            continue
        kept = sum(len(text.strip()) for kind, text in group if kind == SAME)
        both = sum(len(text) for kind, text in group if kind == SAME) * 2 + sum(map(len, changed))
        if not any("\n" in text for text in changed) and kept * 2 >= INLINE_SHARE * both:
            lines.append(DiffLine("~", group))
            continue
        removed: list[list[tuple[bool, str]]] = [[]]
        added: list[list[tuple[bool, str]]] = [[]]
        for kind, text in group:
            if kind != ADDED:
                _emit(removed, kind == REMOVED, text)
            if kind != REMOVED:
                _emit(added, kind == ADDED, text)
        lines += [DiffLine("-", _merge(parts, REMOVED)) for parts in removed]
        lines += [DiffLine("+", _merge(parts, ADDED)) for parts in added]
    return lines


def _bare(word: str) -> str:
    return word.rstrip(" \t") or word


def _common_prefix(a: str, b: str) -> int:
    """Return how many characters a and b share at the start (a binary search on slices)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def _emit(lines: list[list[tuple[bool, str]]], changed: bool, text: str) -> None:
    """Add `text` to the last line, starting a new line at each line break."""
    first, *rest = text.split("\n")
    if first:
        lines[-1].append((changed, first))
    for piece in rest:
        lines.append([(changed, piece)] if piece else [])


def _merge(parts: list[tuple[bool, str]], mark: str) -> tuple[tuple[str, str], ...]:
    """Join neighbouring pieces of the same kind; spaces after a changed word are unmarked."""
    merged = _Pieces()
    for changed, text in parts:
        word = text.rstrip() if changed else text
        merged.add(mark if changed else SAME, word)
        merged.add(SAME, text[len(word) :])
    return merged.done()


def _fold(lines: list[DiffLine], context: int) -> list[DiffLine]:
    """Keep `context` unchanged lines around each change; fold longer stretches to a count."""
    keep: set[int] = set()
    for n, line in enumerate(lines):
        if line.op != " ":
            keep.update(range(max(0, n - context), min(len(lines), n + context + 1)))
    shown: list[DiffLine] = []
    hidden = 0
    for n, line in enumerate(lines):
        if n in keep:
            if hidden:
                shown.append(DiffLine("…", folded=hidden))
                hidden = 0
            shown.append(line)
        else:
            hidden += 1
    if hidden:
        shown.append(DiffLine("…", folded=hidden))
    return shown


def snapshot_of(text: str) -> dict:
    return json.loads(text) if text else {}
