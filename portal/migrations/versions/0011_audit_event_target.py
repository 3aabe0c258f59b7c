"""index audit events by what they were done to

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 10:00:00

"""
from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        'ix_audit_event_target_type_target_id',
        'audit_event',
        ['target_type', 'target_id'],
        unique=False,
    )


def downgrade():
    op.drop_index('ix_audit_event_target_type_target_id', table_name='audit_event')
