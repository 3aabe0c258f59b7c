"""Tell full-page requests from htmx fragment requests."""

from flask import Response, current_app, redirect, request


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


def send_to(target: str, *, htmx_status: int):
    """Send the browser to `target`: a redirect for a page, HX-Redirect for a fragment.

    A fragment's request must not follow a redirect into the page it sits in, so htmx gets
    the status (401 or 403 say why) and the header that makes it load the new page.
    """
    if is_partial():
        response = current_app.response_class(status=htmx_status)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target)
