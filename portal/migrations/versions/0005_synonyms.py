"""synonyms

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 01:39:05.075464

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('synonym',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('term', sa.String(length=40), nullable=False),
    sa.Column('expansion', sa.String(length=200), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_synonym')),
    sa.UniqueConstraint('term', name=op.f('uq_synonym_term'))
    )


def downgrade():
    op.drop_table('synonym')
