"""moderation events and checklist

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 00:47:47.525240

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('moderation_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_study_id', sa.Integer(), nullable=False),
    sa.Column('revision_id', sa.Integer(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.Enum('submitted', 'withdrawn', 'approved', 'changes_requested', 'rejected', 'archived', name='moderation_action', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('snapshot', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['user.id'], name=op.f('fk_moderation_event_actor_id_user')),
    sa.ForeignKeyConstraint(['case_study_id'], ['case_study.id'], name=op.f('fk_moderation_event_case_study_id_case_study'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['revision_id'], ['revision.id'], name=op.f('fk_moderation_event_revision_id_revision'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_moderation_event'))
    )
    with op.batch_alter_table('moderation_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_moderation_event_case_study_id'), ['case_study_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_moderation_event_revision_id'), ['revision_id'], unique=False)

    with op.batch_alter_table('revision', schema=None) as batch_op:
        batch_op.add_column(sa.Column('checklist_confirmed_at', sa.DateTime(), nullable=True))



def downgrade():
    with op.batch_alter_table('revision', schema=None) as batch_op:
        batch_op.drop_column('checklist_confirmed_at')

    with op.batch_alter_table('moderation_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_moderation_event_revision_id'))
        batch_op.drop_index(batch_op.f('ix_moderation_event_case_study_id'))

    op.drop_table('moderation_event')
