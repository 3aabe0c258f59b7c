"""index revisions by case study and state

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 04:30:00

"""
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        'ix_revision_case_study_id_state', 'revision', ['case_study_id', 'state'], unique=False
    )


def downgrade():
    op.drop_index('ix_revision_case_study_id_state', table_name='revision')
