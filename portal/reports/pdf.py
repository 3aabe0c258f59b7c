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


def render(html: str, base_url: str, static_folder: Path) -> bytes:
    """Return the PDF of a page, laid out with its print stylesheet."""
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
    return document.write_pdf()
