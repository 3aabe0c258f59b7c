"""PostgreSQL search: the generation, a token every index write changes

On SQLite this migration does nothing: the embedded default searches with Whoosh.

The token names one state of the search tables: cached search results and each worker's
facet table are keyed by it, so a publication or withdrawal is seen by the next search.
It lives in a schema of its own, beside the models' tables rather than among them.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 15:40:00

"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE SCHEMA IF NOT EXISTS portal_search")
    op.execute(
        """
        CREATE TABLE portal_search.generation (
          only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
          token text NOT NULL  -- random: a restored backup never meets another state's cache
        )
        """
    )
    op.execute("INSERT INTO portal_search.generation (token) VALUES (gen_random_uuid()::text)")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TABLE IF EXISTS portal_search.generation")
    op.execute("DROP SCHEMA IF EXISTS portal_search")
