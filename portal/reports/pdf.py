"""Print the annual report to PDF with WeasyPrint, fetching nothing but our own stylesheets."""

from __future__ import annotations

import functools
from pathlib import Path
from urllib.parse import urlsplit

#: Above this many case studies the server doesn't make the PDF: at about 12 a second
#: (bench/reports_bench.py) a request must not hold a worker for more than a few seconds
#: (docs/security.md). The browser's own print to PDF has no such limit; the job queue
#: will make longer ones away from the request.
MAX_CASE_STUDIES = 50


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


def render(html: str, base_url: str, static_folder: Path) -> bytes:
    """Return the PDF of a page, laid out with its print stylesheet, tagged as PDF/UA-1."""
    return layout(html, base_url, static_folder).write_pdf(**PDF_OPTIONS)
