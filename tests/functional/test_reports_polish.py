"""The reports without friction (issue 15): one count of adoptions on the annual report and in
its PDF; a tagged PDF whose text never runs past its page or its box, with no heading left
alone at a page's foot and no tinted block; charts whose tables fold behind "Show the figures
as a table"; secondary follow buttons that say what is followed; the server's banner.

The PDF is asked for as the report's page asks, made by its job (run here with
`run_queued`, as a worker would) and downloaded (`made_pdf`). It is read twice. Its file,
with pikepdf: the catalogue's tags, language and title, and its text (decoded through each
font's ToUnicode map), where the adoption counts are looked for. Its layout, with
WeasyPrint's own boxes: the very document the job wrote (the test wraps `pdf.layout` and
keeps what it returned), where every line of text must end inside the box that holds it and
inside the page's content area. Reading positions back from the file would need each font's
glyph widths; the boxes already hold them.
"""

from __future__ import annotations

import io
import logging
import re
from datetime import datetime
from html.parser import HTMLParser

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.jobs import run_queued
from portal.models import (
    Adoption,
    AdoptionKind,
    CaseStudy,
    Evidence,
    Force,
    Partner,
    Revision,
    RevisionState,
    Theme,
    utcnow,
)
from portal.reports import pdf

from ..conftest import csrf_from

THIS_YEAR = utcnow().year
YEAR = THIS_YEAR - 1  # the report's year: adoptions are recorded in it and after it
LONG_WORD = "Northamptonshirefireandrescueservicepartnershipsforumforwomensafety" * 2

needs_weasyprint = pytest.mark.skipif(not pdf.available(), reason="WeasyPrint can't load Pango")


# The data: practice of YEAR adopted in YEAR and in THIS_YEAR, and adoptions that are not
# the report's (of practice of another year, of an archived case study).


def _case_study(slug, force, themes, published, *, archived=False, **fields):
    case_study = CaseStudy(
        slug=slug,
        force_id=force.id,
        first_published_at=published,
        archived_at=published if archived else None,
    )
    revision = Revision(
        case_study=case_study,
        number=1,
        state=RevisionState.ARCHIVED if archived else RevisionState.PUBLISHED,
        title=fields.pop("title", f"Practice {slug}"),
        summary=fields.pop("summary", f"What {slug} did."),
        themes=themes,
        published_at=published,
        contact_name=fields.pop("contact_name", "Inspector Example"),
        contact_email="contact@example.police.uk",
        **fields,
    )
    db.session.add_all([case_study, revision])
    db.session.flush()
    return case_study


def _adopt(case_study, force, kind, year):
    db.session.add(
        Adoption(
            case_study_id=case_study.id,
            force_id=force.id,
            kind=kind,
            note="We did it too",
            created_at=datetime(year, 3, 4, 10),
        )
    )


@pytest.fixture
def report(app) -> dict[str, int]:
    """Write the year's practice and its adoptions; return {title: adoptions} expected."""
    with app.app_context():
        forces = db.session.scalars(select(Force).order_by(Force.name).limit(5)).all()
        themes = db.session.scalars(select(Theme).order_by(Theme.position)).all()
        a, b, c, d, e = forces
        spring = datetime(YEAR, 5, 6, 9)
        kept = _case_study("kept", a, themes[:2], spring, evidence=Evidence.WORKED)
        shared = _case_study("shared", b, themes[1:3], spring, evidence=Evidence.PROMISING)
        quiet = _case_study("quiet", c, themes[:1], spring)
        older = _case_study("older", d, themes[:1], datetime(YEAR - 1, 6, 1))
        gone = _case_study("gone", e, themes[:1], spring, archived=True)
        # A long-worded one: every fact must wrap inside the page.
        _case_study(
            "wordy",
            a,
            themes,
            spring,
            title=f"Scheme {LONG_WORD[:150]}",
            contact_name=LONG_WORD[:120],
            partners=[Partner(name=LONG_WORD[:160], name_key="long-partner")],
            evidence=Evidence.UNTESTED,
        )
        _adopt(kept, b, AdoptionKind.ADOPTED, YEAR)
        _adopt(kept, c, AdoptionKind.ADAPTED, THIS_YEAR)  # the next year: still the year's
        _adopt(shared, a, AdoptionKind.ADAPTED, YEAR)
        _adopt(older, a, AdoptionKind.ADOPTED, YEAR)  # recorded in YEAR, older practice
        _adopt(gone, a, AdoptionKind.ADOPTED, YEAR)  # archived: not counted
        db.session.commit()
        assert quiet.id  # published in the year, never adopted: no "taken up by"
    return {"Practice kept": 2, "Practice shared": 1}


class Text(HTMLParser):
    """The page's text, with its tags' ids, as one line."""

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data):
        self.parts.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.parts).split())


def text_of(html: str) -> str:
    parser = Text()
    parser.feed(html)
    return parser.text


def adoption_counts(text: str) -> dict[str, object]:
    """Every place the annual report gives a count of adoptions, read from its text."""
    headline = re.search(r"Adoptions by other forces (\d+)", text)
    sentence = re.search(
        r"other forces had recorded (\d+) adoptions? of this practice "
        r"\((\d+) taken up as it was, (\d+) adapted\), by (\d+) forces?",
        text,
    )
    assert headline and sentence, text[:2000]
    return {
        "headline": int(headline.group(1)),
        "sentence": int(sentence.group(1)),
        "kinds": int(sentence.group(2)) + int(sentence.group(3)),
        "forces": int(sentence.group(4)),
        # Each case study's facts, in the practice by force: "Taken up by 2 other forces".
        "facts": [int(n) for n in re.findall(r"Taken up by (\d+) other forces?", text)],
        # The highlights by theme: "(Force; worked; taken up by 2 other forces)".
        "highlights": [int(n) for n in re.findall(r"; taken up by (\d+) other forces?\)", text)],
    }


def assert_one_count(counts: dict[str, object], expected: dict[str, int]) -> None:
    total = sum(expected.values())
    assert counts["headline"] == counts["sentence"] == counts["kinds"] == total
    assert counts["forces"] == 3  # a and b and c: each took up some of the year's practice
    assert sorted(counts["facts"]) == sorted(expected.values())  # once per case study
    assert sum(counts["facts"]) == total
    assert counts["highlights"]
    assert set(counts["highlights"]) <= set(expected.values())


def test_the_annual_report_gives_one_count_of_adoptions_everywhere(report, member):
    html = member.get(f"/reports/annual/{YEAR}").get_data(as_text=True)
    assert_one_count(adoption_counts(text_of(html)), report)
    # The dashboard's figure for the year is the same count.
    dashboard = member.get(f"/reports?year={YEAR}").get_data(as_text=True)
    assert re.search(r'id="figure-adoptions">3<', dashboard)


# Making and reading the PDF file


def made_pdf(client, year: int):
    """Ask for the year's PDF from its report's page, run the job, return the download."""
    page = client.get(f"/reports/annual/{year}").get_data(as_text=True)
    asked = client.post(f"/reports/annual/{year}/pdf", data={"csrf_token": csrf_from(page)})
    assert asked.status_code == 303, asked.status_code
    run_queued(client.application)
    status = client.get(asked.location).get_data(as_text=True)
    assert "The PDF is ready." in status, status
    link = re.search(r'href="(/reports/annual/\d+/pdf/\d+\.pdf)"', status)
    assert link, status
    return client.get(link.group(1))


def _to_unicode(font) -> dict[int, str]:
    """Read a font's ToUnicode CMap: {character code: text}."""
    cmap = font.ToUnicode.read_bytes().decode("latin-1")
    mapping: dict[int, str] = {}
    for block in re.findall(r"beginbfchar(.*?)endbfchar", cmap, re.S):
        for code, text in re.findall(r"<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]*)>", block):
            mapping[int(code, 16)] = bytes.fromhex(text).decode("utf-16-be")
    for block in re.findall(r"beginbfrange(.*?)endbfrange", cmap, re.S):
        for first, last, start in re.findall(
            r"<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>", block
        ):
            for offset, code in enumerate(range(int(first, 16), int(last, 16) + 1)):
                mapping[code] = chr(int(start, 16) + offset)
    return mapping


def pdf_text(data: bytes) -> list[str]:
    """Return each page's text, run after run, as pikepdf reads it from the file."""
    import pikepdf

    pages = []
    with pikepdf.open(io.BytesIO(data)) as document:
        for page in document.pages:
            fonts = {str(name): _to_unicode(font) for name, font in page.Resources.Font.items()}
            runs: list[str] = []
            font: dict[int, str] = {}
            for operands, operator in pikepdf.parse_content_stream(page):
                op = str(operator)
                if op == "Tf":
                    font = fonts[str(operands[0])]
                elif op in ("Tj", "TJ"):
                    strings = operands[0] if op == "TJ" else [operands[0]]
                    run = ""
                    for item in strings:
                        if isinstance(item, pikepdf.String):
                            raw = bytes(item)
                            run += "".join(
                                font.get(int.from_bytes(raw[i : i + 2], "big"), "")
                                for i in range(0, len(raw), 2)
                            )
                    runs.append(run)
            pages.append(" ".join(" ".join(runs).split()))
    return pages


@pytest.fixture
def laid_out(monkeypatch):
    """Keep the WeasyPrint document the job lays out and writes."""
    kept = []
    layout = pdf.layout

    def keep(*args, **kwargs):
        document = layout(*args, **kwargs)
        kept.append(document)
        return document

    monkeypatch.setattr(pdf, "layout", keep)
    logging.getLogger("weasyprint").setLevel(logging.ERROR)  # its notes on GOV.UK's CSS
    return kept


@needs_weasyprint
def test_the_pdf_gives_the_same_count_of_adoptions(report, member, laid_out):
    response = made_pdf(member, YEAR)
    assert response.status_code == 200
    pages = pdf_text(response.data)
    text = " ".join(pages)
    assert f"HeForShe progress report {YEAR}" in pages[0]
    assert_one_count(adoption_counts(text), report)


@needs_weasyprint
def test_the_pdf_is_tagged_with_its_language_and_title(report, member, laid_out):
    import pikepdf

    data = made_pdf(member, YEAR).data
    title = f"HeForShe progress report {YEAR} (draft)"
    with pikepdf.open(io.BytesIO(data)) as document:
        root = document.Root
        assert root.StructTreeRoot.Type == "/StructTreeRoot"
        assert bool(root.MarkInfo.Marked) is True
        assert str(root.Lang) == "en-GB"
        assert bool(root.ViewerPreferences.DisplayDocTitle) is True
        assert str(document.docinfo.Title).startswith(title)
        with document.open_metadata() as xmp:
            assert xmp["dc:title"].startswith(title)
            assert xmp["pdfuaid:part"] == "1"
        # The structure names its headings and lists, not just blocks of text.
        kinds = set()
        stack = [root.StructTreeRoot.K]
        while stack:
            element = stack.pop()
            if isinstance(element, pikepdf.Array):
                stack.extend(element)
            elif isinstance(element, pikepdf.Dictionary) and "/S" in element:
                kinds.add(str(element.S))
                stack.append(element.get("/K"))
        assert {"/H1", "/H2", "/H3", "/L", "/LI", "/Link"} <= kinds


def _boxes(box):
    yield box
    for child in getattr(box, "children", None) or ():
        yield from _boxes(child)


def _lines_past_their_edge(document) -> list[str]:
    """Return every run of text that ends past its block's content box or the page's."""
    from weasyprint.formatting_structure import boxes

    found = []

    def visit(box, right, number):
        if isinstance(box, boxes.MarginBox):  # the page number, outside the content
            return
        if isinstance(box, boxes.BlockContainerBox | boxes.TableCellBox) and not isinstance(
            box, boxes.PageBox
        ):
            right = min(right, box.content_box_x() + box.width)
        if isinstance(box, boxes.TextBox) and box.position_x + box.width > right + 0.5:
            past = box.position_x + box.width - right
            found.append(f"page {number}: {box.text!r} ends {past:.0f}px out")
        for child in getattr(box, "children", None) or ():
            visit(child, right, number)

    for number, page in enumerate(document.pages, 1):
        page_box = page._page_box
        visit(page_box, page_box.content_box_x() + page_box.width, number)
    return found


def _lines(page) -> list[tuple[str, str]]:
    """(tag of the block holding it, text) for each run of text on the page, in order."""
    from weasyprint.formatting_structure import boxes

    lines = []

    def visit(box, block):
        if isinstance(box, boxes.MarginBox):
            return
        if isinstance(box, boxes.BlockBox):
            block = box.element_tag
        if isinstance(box, boxes.TextBox) and box.text.strip():
            lines.append((block, box.text.strip()))
        for child in getattr(box, "children", None) or ():
            visit(child, block)

    visit(page._page_box, None)
    return lines


@needs_weasyprint
def test_the_pdf_fits_its_pages_with_no_lone_heading_or_tinted_block(report, member, laid_out):
    assert made_pdf(member, YEAR).status_code == 200
    (document,) = laid_out
    assert len(document.pages) > 2
    # No text runs past its box or the page: the long words wrap.
    assert _lines_past_their_edge(document) == []
    for number, page in enumerate(document.pages, 1):
        lines = _lines(page)
        assert lines, f"page {number} is empty"
        # No page ends with a heading: each stays with what follows it.
        if number < len(document.pages):
            assert lines[-1][0] not in ("h1", "h2", "h3", "h4"), f"page {number}: {lines[-1]}"
        # No tinted block: the page, and every block on it, is white or clear.
        for box in _boxes(page._page_box):
            colour = box.style["background_color"]
            clear = colour.alpha == 0
            assert clear or all(c > 0.999 for c in colour.to("srgb").coordinates), (
                f"page {number}: {box.element_tag} is tinted {colour}"
            )
    # "Practice by force" opens the page of its first force.
    heading = ("h2", "Practice by force")
    (forces_page,) = [page for page in document.pages if heading in _lines(page)]
    assert _lines(forces_page)[:2] == [heading, ("h3", "Avon and Somerset Constabulary")]


# The dashboard's charts


class Charts(HTMLParser):
    """Each chart: its accessible name and description, and whether a table follows it."""

    def __init__(self):
        super().__init__()
        self.ids: dict[str, str] = {}
        self.charts: list[dict] = []
        self.summaries: list[str] = []
        self._in = None
        self._summary = False
        self._open: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self._in = attrs["id"]
            self.ids[attrs["id"]] = ""
        if attrs.get("role") == "img":
            self.charts.append({**attrs, "tables": 0})
        if tag == "summary":
            self._summary = True
            self.summaries.append("")
        if tag in ("figure", "details"):
            self._open.append(tag)
        if tag == "table" and self._open == ["figure", "details"]:
            self.charts[-1]["tables"] += 1  # a table in a details in the chart's figure

    def handle_endtag(self, tag):
        if tag == "summary":
            self._summary = False
        if tag in ("figure", "details"):
            self._open.pop()

    def handle_data(self, data):
        if self._in:
            self.ids[self._in] += data
        if self._summary:
            self.summaries[-1] += data


def test_each_chart_is_named_described_and_folds_its_table(data_for_charts, member):
    html = member.get("/reports").get_data(as_text=True)
    parser = Charts()
    parser.feed(html)
    assert len(parser.charts) == 4
    for chart in parser.charts:
        name = parser.ids[chart["aria-labelledby"]].strip()
        assert name.startswith("Published case studies by")
        assert parser.ids[chart["aria-describedby"]].startswith("Bar chart of")
        assert chart["tables"] == 1  # its own table, after it
    shown = [s for s in parser.summaries if s.startswith("Show the figures as a table")]
    assert len(shown) == 4
    # The labels are text, not drawn inside the picture; the bars are.
    assert '<span class="portal-chart__label">Challenging misogyny</span>' in html
    assert "<text" not in html
    assert html.count("<svg") >= 15 and 'aria-hidden="true" focusable="false"' in html


@pytest.fixture
def data_for_charts(report):
    return report


def test_bars_are_shares_of_the_longest():
    from portal.reports.charts import BarChart

    chart = BarChart.of("Chart", [("a", 10), ("b", 5), ("c", 0), ("d", 1000)])
    assert [bar.percent for bar in chart.bars] == [1.0, 0.5, 0.0, 100.0]
    assert BarChart.of("Empty", []).summary == "No figures yet."


# Following


def test_follow_buttons_are_secondary_and_say_what_is_followed(member, app):
    from ..conftest import csrf_from

    with app.app_context():
        theme = db.session.scalar(select(Theme).where(Theme.slug == "challenging-misogyny"))
        theme_id, others = theme.id, db.session.scalar(select(db.func.count()).select_from(Theme))
    page = member.get("/account/following").get_data(as_text=True)
    buttons = re.findall(r'<button type="submit" id="follow-[^"]*"\s+class="([^"]*)"', page)
    assert len(buttons) == others
    assert all("govuk-button--secondary" in classes for classes in buttons)
    assert "Following</strong>" not in page

    token = csrf_from(page)
    member.post(f"/account/following/theme/{theme_id}", data={"csrf_token": token})
    page = member.get("/account/following").get_data(as_text=True)
    form = re.search(rf'<form id="follow-theme-{theme_id}".*?</form>', page, re.S).group(0)
    assert (
        '<strong class="govuk-tag govuk-tag--green portal-follow__state">Following</strong>' in form
    )
    assert re.search(
        r'Stop following<span class="govuk-visually-hidden"> Challenging misogyny</span>', form
    )
    assert page.count("Following</strong>") == 1
    # The others still offer to follow, each by name.
    assert re.search(r'>Follow<span class="govuk-visually-hidden"> Women in sport</span>', page)


# The development server's banner


def test_the_server_banner_prints_one_line_at_a_time(app):
    from werkzeug.serving import make_server

    from portal.cli import show_server_banner_lines

    logger = logging.getLogger("werkzeug")
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    keep = Keep()
    logger.addHandler(keep)
    level = logger.level
    logger.setLevel(logging.INFO)
    show_server_banner_lines()
    server = make_server("127.0.0.1", 0, app)
    try:
        server.log_startup()
        # A visitor's line break is still escaped (web/logs.py): no forged log lines.
        logger.info('127.0.0.1 - - "GET /a\nWARNING: This is a development server. HTTP/1.1"')
    finally:
        server.server_close()
        logger.removeHandler(keep)
        logger.setLevel(level)
    assert any(line.startswith(" * Running on http://127.0.0.1:") for line in seen), seen
    assert any("WARNING: This is a development server." in line for line in seen[:1])
    assert not any("\\n" in line for line in seen[:-1]), seen
    assert "\\n" in seen[-1] and "\n" not in seen[-1]
