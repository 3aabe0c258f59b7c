"""The rows of an export, read and written a batch at a time.

The rows are read from the database 500 ids at a time as plain tuples, never ORM objects,
so nothing accumulates in the session and memory stays flat however many case studies
match. The JSON Lines export is exactly the format `portal import-case-studies` reads.
Contact email addresses are only written when asked for (moderators and admins).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date, datetime

from sqlalchemy import select

from ..core.links import external_url
from ..core.live import is_live
from ..extensions import db
from ..models import (
    EVIDENCE_LABELS,
    CaseStudy,
    Evidence,
    Force,
    Partner,
    Revision,
    Theme,
    revision_partner,
    revision_theme,
)

BATCH_SIZE = 500
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection), also
# after leading spaces or line breaks, which spreadsheets skip.
FORMULA_STARTS = ("=", "+", "-", "@")
BREAKS = ("\t", "\r", "\n")
CSV_COLUMNS = (
    "ID",
    "Link",
    "Title",
    "Summary",
    "Force",
    "Themes",
    "Partners",
    "Event date",
    "First published",
    "Evidence of impact",
    "Outcomes",
    "Lessons learned",
    "Contact name",
)
CONTACT_EMAIL_COLUMN = "Contact email"


# Reading the rows


def _batches(ids: list[int]) -> Iterator[list[dict]]:
    """Yield the published case studies of `ids` as dicts, in the order of `ids`, a batch
    at a time (plain rows, so the session keeps nothing between batches)."""
    forces = dict(db.session.execute(select(Force.id, Force.name)).all())
    for start in range(0, len(ids), BATCH_SIZE):
        batch = ids[start : start + BATCH_SIZE]
        found = {
            row.case_study_id: row._asdict()
            for row in db.session.execute(
                select(
                    Revision.id,
                    Revision.case_study_id,
                    CaseStudy.slug,
                    CaseStudy.force_id,
                    CaseStudy.first_published_at,
                    Revision.title,
                    Revision.summary,
                    Revision.body,
                    Revision.event_date,
                    Revision.outcomes,
                    Revision.lessons,
                    Revision.evidence,
                    Revision.contact_name,
                    Revision.contact_email,
                )
                .join(CaseStudy, CaseStudy.id == Revision.case_study_id)
                .where(Revision.case_study_id.in_(batch), is_live())
            )
        }
        if not found:
            continue
        revision_ids = [row["id"] for row in found.values()]
        themes = _names(
            select(revision_theme.c.revision_id, Theme.name)
            .join(Theme, Theme.id == revision_theme.c.theme_id)
            .where(revision_theme.c.revision_id.in_(revision_ids))
            .order_by(Theme.position, Theme.name)
        )
        partners = _names(
            select(revision_partner.c.revision_id, Partner.name)
            .join(Partner, Partner.id == revision_partner.c.partner_id)
            .where(revision_partner.c.revision_id.in_(revision_ids))
            .order_by(Partner.name)
        )
        rows = []
        for case_study_id in batch:
            row = found.get(case_study_id)
            if row is None:  # archived or changed since the index said so: not exported
                continue
            row["force"] = forces[row["force_id"]]
            row["themes"] = themes.get(row["id"], [])
            row["partners"] = partners.get(row["id"], [])
            rows.append(row)
        if rows:
            yield rows


def _names(statement) -> dict[int, list[str]]:
    names: dict[int, list[str]] = {}
    for revision_id, name in db.session.execute(statement):
        names.setdefault(revision_id, []).append(name)
    return names


# Writing them out


def csv_chunks(ids: list[int], with_email: bool) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS + ((CONTACT_EMAIL_COLUMN,) if with_email else ()))
    yield ("\ufeff" + buffer.getvalue()).encode("utf-8")  # the BOM tells Excel it is UTF-8
    for batch in _batches(ids):
        buffer.seek(0)
        buffer.truncate()
        for row in batch:
            cells = [
                row["case_study_id"],
                external_url(
                    "casestudies.show", case_study_id=row["case_study_id"], slug=row["slug"]
                ),
                row["title"],
                row["summary"],
                row["force"],
                "; ".join(row["themes"]),
                "; ".join(row["partners"]),
                _iso(row["event_date"]),
                _iso(row["first_published_at"]),
                EVIDENCE_LABELS[row["evidence"]] if row["evidence"] else "",
                row["outcomes"],
                row["lessons"],
                row["contact_name"],
            ]
            if with_email:
                cells.append(row["contact_email"])
            writer.writerow([inert(cell) for cell in cells])
        yield buffer.getvalue().encode("utf-8")


def jsonl_chunks(ids: list[int], with_email: bool) -> Iterator[bytes]:
    for batch in _batches(ids):
        lines = [_json_line(_import_record(row, with_email)) for row in batch]
        yield ("\n".join(lines) + "\n").encode("utf-8")


def _json_line(record: dict) -> str:
    # Accents stay readable; the two Unicode line separators are escaped, as some tools
    # that read "lines" split on them too.
    line = json.dumps(record, ensure_ascii=False)
    return line.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _import_record(row: dict, with_email: bool) -> dict:
    """One line of the import format (docs/operations.md, Importing case studies)."""
    record = {
        "title": row["title"],
        "summary": row["summary"],
        "body": row["body"],
        "force": row["force"],
        "themes": row["themes"],
        "partners": row["partners"],
        "event_date": _iso(row["event_date"]) or None,
        "outcomes": row["outcomes"],
        "lessons": row["lessons"],
        "evidence": Evidence(row["evidence"]).value if row["evidence"] else None,
        "contact_name": row["contact_name"],
        # Left out for contributors, who may not see it; such a file does not re-import.
        "contact_email": row["contact_email"] if with_email else None,
        "status": "published",
    }
    return {k: v for k, v in record.items() if v is not None}


def _iso(value: date | datetime | None) -> str:
    if value is None:
        return ""
    return value.date().isoformat() if isinstance(value, datetime) else value.isoformat()


def inert(cell) -> str:
    """Return the cell as text that no spreadsheet will run as a formula."""
    value = "" if cell is None else str(cell)
    if value.startswith(BREAKS) or value.lstrip().startswith(FORMULA_STARTS):
        return "'" + value
    return value
