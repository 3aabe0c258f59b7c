"""PostgreSQL full-text search: its tables, indexes and text-search configuration

On SQLite this migration does nothing: the embedded default searches with Whoosh.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 04:10:00

"""
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    # English stemming with accents folded first: Cwmbran finds Cwmbrân.
    op.execute(
        """
        DO $$ BEGIN
          IF NOT EXISTS (SELECT 1 FROM pg_ts_config WHERE cfgname = 'portal_english') THEN
            CREATE TEXT SEARCH CONFIGURATION portal_english (COPY = english);
            ALTER TEXT SEARCH CONFIGURATION portal_english
              ALTER MAPPING FOR hword, hword_part, word WITH unaccent, english_stem;
          END IF;
        END $$
        """
    )
    op.execute(
        """
        CREATE TABLE search_entry (
          case_study_id integer PRIMARY KEY,  -- derived data: no foreign key, removals are
                                              -- written with the change that causes them
          revision_id integer NOT NULL,
          title text NOT NULL,
          summary text NOT NULL,
          excerpt text NOT NULL,
          force text NOT NULL,
          themes text[] NOT NULL,
          partners text[] NOT NULL,
          year integer,
          published_at timestamp NOT NULL,
          document tsvector NOT NULL,  -- everything, for matching (GIN)
          heading tsvector NOT NULL    -- title, themes, summary, force: small, for ranking
        )
        """
    )
    op.execute("CREATE INDEX ix_search_entry_document ON search_entry USING gin (document)")
    op.execute("CREATE INDEX ix_search_entry_published ON search_entry (published_at, case_study_id)")
    # The words "Did you mean" draws on, found by trigram similarity.
    op.execute("CREATE TABLE search_word (word text PRIMARY KEY)")
    op.execute("CREATE INDEX ix_search_word_trgm ON search_word USING gin (word gin_trgm_ops)")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TABLE IF EXISTS search_word")
    op.execute("DROP TABLE IF EXISTS search_entry")
    op.execute("DROP TEXT SEARCH CONFIGURATION IF EXISTS portal_english")
