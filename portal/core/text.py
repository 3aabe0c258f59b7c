"""Text rules shared by every area: clean text, one-line text, email shape, search boxes."""

import re
import unicodedata

MAX_QUERY = 200
EMAIL_MAX = 254
SLUG = re.compile(r"[a-z0-9-]{1,120}")
# The addresses people really use; nothing that could add recipients or break out of a
# mailto: link (no ?, &, quotes, angle brackets, commas or spaces).
EMAIL_PATTERN = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")

#: Bidirectional embeddings, overrides and isolates. They reorder the text after them, so a
#: title or a name could read differently from what it holds ("Trojan Source").
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
#: Characters that end a line somewhere: Python's str.splitlines() and the email package
#: break on U+2028 and U+2029 as they do on a newline.
_BREAKING = ("Cc", "Cs", "Zl", "Zp")


def is_clean_text(value: str, *, multiline: bool) -> bool:
    """Return False for text holding control characters or lone surrogates.

    One-line text (titles, names, partners: they reach email subjects and feed titles) may
    not hold line or paragraph separators or bidirectional controls either.
    """
    allowed = {"\n", "\r", "\t"} if multiline else {"\t"}
    for ch in value:
        if ch in allowed:
            continue
        category = unicodedata.category(ch)
        if category in ("Cc", "Cs"):
            return False
        if not multiline and (category in ("Zl", "Zp") or ch in BIDI_CONTROLS):
            return False
    return True


def looks_like_slug(value: str) -> bool:
    """Return True for a slug's shape: lower-case letters, digits and hyphens, up to 120."""
    return bool(SLUG.fullmatch(value))


def looks_like_email(value: str) -> bool:
    """Return True when `value` has the shape of an email address."""
    return len(value) <= EMAIL_MAX and bool(EMAIL_PATTERN.match(value))


def one_line(text: str, limit: int | None = None) -> str:
    """Return `text` as one tidy line: breaks, controls and bidi controls become spaces."""
    kept = "".join(
        " " if unicodedata.category(ch) in _BREAKING or ch in BIDI_CONTROLS else ch for ch in text
    )
    line = " ".join(kept.split())
    if limit is not None and len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
    return line


def clean_query(text: str) -> str:
    """Return `text` without control or direction-changing characters, spaces collapsed, at
    most 200 characters."""
    kept = "".join(
        ch
        for ch in text
        if unicodedata.category(ch) not in ("Cc", "Cs") and ch not in BIDI_CONTROLS
    )
    return " ".join(kept.split())[:MAX_QUERY]
