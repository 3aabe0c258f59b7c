"""Race-safe writes: how many rows a conditional UPDATE or DELETE changed."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, Result


def changed_rows(result: Result[Any]) -> int:
    """Return the rows an UPDATE or DELETE changed (0: another request got there first)."""
    return cast(CursorResult[Any], result).rowcount
