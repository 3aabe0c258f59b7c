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
    parser.validateLink = _allowed_link  # type: ignore[method-assign] # markdown-it's own hook
    return parser


def _allowed_link(url: str) -> bool:
    # Anything else (javascript:, data:, tel:, //other-host, ...) stays plain text.
    lowered = url.strip().lower()
    if lowered.startswith(("https://", "http://", "mailto:")):
        return True
    return lowered.startswith(("/", "#")) and not lowered.startswith(("//", "/\\"))


def _fit_headings(tokens, top: int) -> None:
    # The page's title is the only h1; the text's own top heading level becomes `top`
    # and the rest keep their steps below it.
    headings = [t for t in tokens if t.type in ("heading_open", "heading_close")]
    if not headings:
        return
    shift = top - min(int(t.tag[1]) for t in headings)
    for token in headings:
        token.tag = f"h{min(int(token.tag[1]) + shift, 6)}"


#: Texts at least this long are rendered once per process and kept (a 100,000-character body
#: takes a few hundred milliseconds); shorter ones are quick enough to render every time.
CACHED_FROM = 10_000


def render_markdown(text: str | None, top_heading: int = 2) -> Markup:
    """Return the HTML for `text`, safe to insert in a page as it is.

    The text's own top heading level becomes `top_heading` (h2 for a body that sits
    under the page title, h3 for a section under its own h2).
    """
    if not text:
        return Markup("")
    render = _render_cached if len(text) >= CACHED_FROM else _render
    return Markup(render(text, top_heading))  # noqa: S704 - cleaned by nh3 (allow-list below)


@lru_cache(maxsize=32)  # at most about 10 MB of text and HTML
def _render_cached(text: str, top_heading: int) -> str:
    return _render(text, top_heading)


def _render(text: str, top_heading: int) -> str:
    parser = _parser()
    tokens = parser.parse(text)
    _fit_headings(tokens, top_heading)
    html = parser.renderer.render(tokens, parser.options, {})
    cleaned = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    return cleaned
