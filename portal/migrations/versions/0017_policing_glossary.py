"""The policing glossary: each synonym says where it came from; the glossary seeded once

Synonyms gain a `source` (the public glossary a term was checked against, or empty for one
an admin added). The glossary of UK policing and its partners (portal/data/glossary.csv:
several hundred acronyms, their plurals and their meanings) is added once, for each term
not in the list already: what an admin wrote stays, and what an admin later removes stays
removed. (Into an empty list, as in a new database, `portal init-db` seeds it instead.) See docs/search.md, "Acronyms and the glossary".

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 03:30:00

"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("synonym") as batch:
        batch.add_column(sa.Column("source", sa.String(length=160), nullable=False, server_default=""))
    from portal.reference import glossary

    synonym = sa.table(
        "synonym",
        sa.column("term", sa.String),
        sa.column("expansion", sa.String),
        sa.column("source", sa.String),
        sa.column("updated_at", sa.DateTime),
    )
    bind = op.get_bind()
    present = {row[0] for row in bind.execute(sa.select(synonym.c.term))}
    if not present:
        # A new database: `portal init-db` seeds the whole glossary into the empty list
        # (portal.reference), and `portal migrate-data` needs its target empty.
        return
    now = datetime.now(UTC).replace(tzinfo=None)  # naive UTC, as the portal stores times
    rows = [
        {"term": term, "expansion": expansion, "source": source, "updated_at": now}
        for term, (expansion, source) in glossary().items()
        if term not in present
    ]
    if rows:
        op.bulk_insert(synonym, rows)


def downgrade():
    with op.batch_alter_table("synonym") as batch:
        batch.drop_column("source")
