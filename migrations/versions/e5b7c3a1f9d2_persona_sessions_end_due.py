"""inquiries.persona_sessions_end_due_at and inquiries.persona_sessions (Persona's sessions)

persona_sessions_end_due_at: Persona's sessions of the inquiry must be ended.
Set in the transaction that signs a person out everywhere (also a password change or reset, or
a disabled account); a worker asks Persona to expire the sessions and clears it; the sweep hands
rows nobody finished to the workers again.

persona_sessions: how many sessions Persona lists for the inquiry at our latest read (the
session cap is counted on it, not on the tokens we minted).

Revision ID: e5b7c3a1f9d2
Revises: 7c1e2f0a9b3d
Create Date: 2026-11-27 21:10:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'e5b7c3a1f9d2'
down_revision = '7c1e2f0a9b3d'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('inquiries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('persona_sessions_end_due_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('persona_sessions', sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table('inquiries', schema=None) as batch_op:
        batch_op.drop_column('persona_sessions')
        batch_op.drop_column('persona_sessions_end_due_at')
