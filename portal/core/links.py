"""Absolute links to the portal's pages, for emails and feeds."""

from __future__ import annotations

from typing import Any

from flask import current_app, url_for


def external_url(endpoint: str, **values: Any) -> str:
    """Return an absolute link for an email, from BASE_URL, never the Host header."""
    return str(current_app.config["BASE_URL"]) + url_for(endpoint, **values)
