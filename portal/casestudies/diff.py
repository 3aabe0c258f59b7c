"""Compare two versions of a case study, field by field, line by line."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass

FIELDS = (
    ("title", "Title"),
    ("summary", "Summary"),
    ("body", "What you did"),
    ("themes", "Themes"),
    ("partners", "Partners"),
    ("event_date", "Date"),
    ("outcomes", "Outcomes"),
    ("lessons", "Lessons learned"),
    ("evidence", "Evidence of impact"),
    ("contact_name", "Contact name"),
    ("contact_email", "Contact email"),
    ("attachments", "Attachments"),
)


@dataclass(frozen=True)
class FieldDiff:
    label: str
    lines: list[tuple[str, str]]  # (" ", "+" or "-", text)


def _lines(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return str(value).splitlines()


def compare(old: dict, new: dict) -> list[FieldDiff]:
    """Return the changed fields, each with its lines kept, removed and added."""
    changes = []
    for name, label in FIELDS:
        before, after = _lines(old.get(name)), _lines(new.get(name))
        if before == after:
            continue
        lines = []
        for line in difflib.ndiff(before, after):
            op, text = line[0], line[2:]
            if op in " +-":
                lines.append((op, text))
        changes.append(FieldDiff(label, lines))
    return changes


def snapshot_of(text: str) -> dict:
    return json.loads(text) if text else {}
