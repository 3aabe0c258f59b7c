"""Tell full-page requests from htmx fragment requests."""

from flask import Response, request


def is_partial() -> bool:
    """Return True when htmx asked for a fragment (not a history restore)."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def vary_on_htmx(response: Response) -> Response:
    """Mark a response that differs by HX-Request, so caches keep both."""
    response.vary.add("HX-Request")
    return response
