"""Case-study Markdown becomes safe HTML whatever the author types."""

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from portal.casestudies.markdown import render_markdown

ATTACKS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    '<a href="/x" onclick="alert(1)">click</a>',
    '<div hx-get="/admin" hx-trigger="load">x</div>',
    '<button hx-post="/case-studies/1/approve">ok</button>',
    "<iframe src='https://evil.example'></iframe>",
    "<svg onload=alert(1)>",
    "<style>body{display:none}</style>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](java\tscript:alert(1))",
    "[click](&#106;avascript:alert(1))",
    "[click](&#x6A;avascript:alert(1))",
    "[click](javascript&colon;alert(1))",
    "[click]( javascript:alert(1))",
    "[click](%6Aavascript:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[click](DATA:text/html,<script>alert(1)</script>)",
    "[click](vbscript:msgbox(1))",
    "[ref][1]\n\n[1]: javascript:alert(1)",
    "<javascript:alert(1)>",
    "![x](javascript:alert(1))",
    '[x](https://ok.example "a" onmouseover="alert(1)")',
]


class _Elements(HTMLParser):
    """Collect every element and attribute a browser would build from the HTML."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))


SAFE_TAGS = {"p", "a", "h2", "h3", "strong", "em", "code", "pre", "ul", "ol", "li", "br"}


@pytest.mark.parametrize("source", ATTACKS)
def test_markdown_never_emits_active_content(source):
    for tag, attrs in _Elements(str(render_markdown(source))).elements:
        assert tag in SAFE_TAGS
        for name in attrs:
            assert not name.startswith("on")
            assert not name.startswith("hx-") and not name.startswith("data-hx")
        href = (attrs.get("href") or "").strip().lower()
        scheme = urlsplit(href).scheme
        assert scheme in {"", "http", "https", "mailto"}, href


@pytest.mark.parametrize(
    "source",
    ['<a href="/x" onclick="alert(1)">click</a>', '<div hx-get="/admin">x</div>'],
)
def test_raw_html_is_shown_as_text_not_markup(source):
    html = str(render_markdown(source))
    assert "&lt;" in html
    assert "<a " not in html and "<div" not in html


def test_only_web_and_mail_links_survive():
    html = str(render_markdown("[a](https://heforshe.org) [b](mailto:a@b.police.uk) [c](/library)"))
    assert 'href="https://heforshe.org"' in html
    assert 'href="mailto:a@b.police.uk"' in html
    assert 'href="/library"' in html
    assert html.count('rel="noopener noreferrer nofollow"') == 3


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("# A\n\n## B", "<h2>A</h2>\n<h3>B</h3>"),
        ("## A\n\n### B", "<h2>A</h2>\n<h3>B</h3>"),
        ("### A\n\n#### B", "<h2>A</h2>\n<h3>B</h3>"),
    ],
)
def test_body_headings_start_at_h2_and_keep_their_steps(source, expected):
    assert str(render_markdown(source)).strip() == expected


def test_ordinary_markdown_is_kept_and_headings_sit_below_the_page_title():
    html = str(
        render_markdown("# What we did\n\n- one\n- **two**\n\n| a | b |\n|---|---|\n| 1 | 2 |")
    )
    assert "<h2>What we did</h2>" in html
    assert "<h1" not in html
    assert "<li><strong>two</strong></li>" in html
    assert "<table>" in html


def test_empty_body_renders_nothing():
    assert str(render_markdown("")) == ""
    assert str(render_markdown(None)) == ""


@pytest.mark.parametrize(
    "source", ["[x](//evil.example/page)", "[x](tel:+441234)", "[x](ftp://files.example)"]
)
def test_links_other_than_web_mail_and_this_site_stay_plain_text(source):
    html = str(render_markdown(source))
    assert "<a" not in html
    assert "[x](" in html


def test_section_text_headings_start_below_the_sections_own_heading():
    assert (
        str(render_markdown("# Costs\n\n## Staff", top_heading=3)).strip()
        == "<h3>Costs</h3>\n<h4>Staff</h4>"
    )
