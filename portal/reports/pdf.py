"""Print the annual report to PDF with WeasyPrint, fetching nothing but our own stylesheets.

The PDF is made by a job (services.py), never in a request: a year of 2,000 case studies
takes about a minute and a half and 1 GB of memory (bench/report_pdf.py).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import logging
from pathlib import Path
from urllib.parse import urlsplit

#: A safety bound, far above any year so far, not a limit people meet: WeasyPrint holds
#: every page's boxes until the file is written, about 0.5 MB per case study (2,000 added
#: 1 GB at the peak), so a year past this many would take a worker several GB
#: (docs/benchmarks.md). The browser's own print to PDF has no such bound.
MAX_CASE_STUDIES = 5_000


@functools.cache
def available() -> bool:
    """Return True when WeasyPrint and the Pango libraries it draws text with are here."""
    try:
        import weasyprint  # noqa: F401 - loads Pango through cffi, or fails
    except (ImportError, OSError):
        return False
    return True


#: Tagged PDF for accessibility (PDF/UA-1): a structure tree that screen readers follow, the
#: language (from <html lang>) and the title (from <title>, shown as the window's title).
PDF_OPTIONS = {"pdf_variant": "pdf/ua-1", "pdf_tags": True}


def layout(html: str, base_url: str, static_folder: Path):
    """Return WeasyPrint's laid-out pages of a page, with its print stylesheet (not yet a PDF).

    Tests read the boxes of this layout to check that nothing runs past a page's edge.
    """
    import weasyprint
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    _quieten(logging.getLogger("weasyprint"))
    _index_pages()
    static = static_folder.resolve()

    class OwnStylesheetsOnly(URLFetcher):
        """Serve the page's own CSS from disk; refuse every other address (no SSRF)."""

        def fetch(self, url, headers=None):
            path = urlsplit(url).path
            if path.startswith("/static/") and path.endswith(".css"):
                target = (static / path.removeprefix("/static/")).resolve()
                if target.is_relative_to(static) and target.is_file():
                    return URLFetcherResponse(
                        url, target.read_bytes(), {"Content-Type": "text/css; charset=utf-8"}
                    )
            raise ValueError(f"not fetched: {url}")

    document = weasyprint.HTML(
        string=html, base_url=base_url, url_fetcher=OwnStylesheetsOnly(), media_type="print"
    )
    return document.render(**PDF_OPTIONS)


def write(document) -> bytes:
    """Return the PDF file of a laid-out document, tagged as PDF/UA-1."""
    _index_pages()
    return bytes(document.write_pdf(**PDF_OPTIONS))


def render(html: str, base_url: str, static_folder: Path) -> bytes:
    """Return the PDF of a page, laid out with its print stylesheet, tagged as PDF/UA-1."""
    return write(layout(html, base_url, static_folder))


def give_memory_back() -> None:
    """Hand the memory a PDF's pages took back to the system, where the C library can.

    The boxes of the pages hold one another in cycles, which only the garbage collector
    frees (a collection, here, rather than whenever the next one comes); then glibc keeps
    most of the freed heap for later unless asked to hand it back (malloc_trim).
    """
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:  # not glibc (musl, macOS): nothing to trim
        return None


def _quieten(logger: logging.Logger) -> None:
    # Its notes on GOV.UK Frontend's CSS (screen-only media queries, properties it does not
    # know) come by the hundred with every PDF and say nothing wrong: errors still show.
    if logger.level < logging.ERROR:
        logger.setLevel(logging.ERROR)


@functools.cache
def _index_pages() -> None:
    """Make pydyf's `page_references` a lookup instead of a rebuild of every page's reference.

    WeasyPrint's PDF/UA tagging asks for it once per tagged element (pydyf 0.13 builds the
    tuple of all pages each time): time grew with pages x elements, 17 of the 36 seconds of
    writing a 921-page report. The tuple is kept until a page is added; the file is the same
    byte for byte.
    """
    import pydyf

    original = getattr(pydyf.PDF, "page_references", None)
    if not isinstance(original, property) or original.fget is None:  # pydyf changed
        return
    build = original.fget

    def page_references(self) -> tuple[bytes, ...]:
        kids = self.pages["Kids"]
        kept = self.__dict__.get("_portal_page_references")
        if kept is None or kept[0] != len(kids):
            kept = (len(kids), build(self))
            self.__dict__["_portal_page_references"] = kept
        return kept[1]

    pydyf.PDF.page_references = property(page_references)
