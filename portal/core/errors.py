"""Errors that any area's services raise and any area's views show."""

from __future__ import annotations


class FieldErrors(Exception):
    """The input breaks a rule; `errors` maps field names to messages for the form."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors
