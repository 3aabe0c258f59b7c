"""PostgreSQL search: numbered generations, their history, and each entry's version

On SQLite this migration does nothing: the embedded default searches with Whoosh.

Each index write now also numbers its generation (one more than the last) and records the
number with its token in `portal_search.history`; the entries it writes carry that number
as their `version`. A worker that ranked some words' matches at generation N can then bring
its list up to date by ranking only the entries written since (`version > N`), after
checking in the history that generation N is an ancestor of the state it reads now (a
restored backup is not: its history names other tokens). See docs/search.md.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 19:20:00

"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE portal_search.generation ADD COLUMN number bigint NOT NULL DEFAULT 0")
    op.execute(
        """
        CREATE TABLE portal_search.history (
          number bigint PRIMARY KEY,
          token text NOT NULL
        )
        """
    )
    op.execute("ALTER TABLE search_entry ADD COLUMN version bigint NOT NULL DEFAULT 0")
    op.execute("CREATE INDEX ix_search_entry_version ON search_entry (version)")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_search_entry_version")
    op.execute("ALTER TABLE search_entry DROP COLUMN IF EXISTS version")
    op.execute("DROP TABLE IF EXISTS portal_search.history")
    op.execute("ALTER TABLE portal_search.generation DROP COLUMN IF EXISTS number")
