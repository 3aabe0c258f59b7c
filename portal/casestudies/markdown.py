"""Render case-study Markdown to safe HTML: no raw HTML, no scripts, only safe links."""

from __future__ import annotations

from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

ALLOWED_TAGS = {
    "p",
    "br",
    "hr",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "strong",
    "em",
    "del",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # Raw HTML is escaped, never passed through; images are off (no tracking pixels).
    parser = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    parser.enable(["table", "strikethrough"])
    parser.disable("image")
    return parser


def _fit_headings(tokens) -> None:
    # The page's title is the only h1 and the body sits right under it, so the body's
    # top heading level becomes h2 and the rest keep their steps below it.
    headings = [t for t in tokens if t.type in ("heading_open", "heading_close")]
    if not headings:
        return
    shift = 2 - min(int(t.tag[1]) for t in headings)
    for token in headings:
        token.tag = f"h{min(int(token.tag[1]) + shift, 6)}"


def render_markdown(text: str | None) -> Markup:
    """Return the HTML for `text`, safe to insert in a page as it is."""
    if not text:
        return Markup("")
    parser = _parser()
    tokens = parser.parse(text)
    _fit_headings(tokens)
    html = parser.renderer.render(tokens, parser.options, {})
    cleaned = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    return Markup(cleaned)  # noqa: S704 - cleaned by nh3 with an allow-list just above
