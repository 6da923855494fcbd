"""Outbox: emails written with the link they carry, sent by the Celery workers

Revision ID: 7c1e2f0a9b3d
Revises: c4e1a7d9b2f3
Create Date: 2026-11-27 18:05:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7c1e2f0a9b3d'
down_revision = 'c4e1a7d9b2f3'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('template', sa.String(length=40), nullable=False),
    sa.Column('to_address', sa.String(length=254), nullable=True),
    sa.Column('message_ciphertext', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=200), nullable=True),
    sa.Column('request_id', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
    sa.Column('claimed_at', sa.DateTime(), nullable=True),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_outbox_status_next_attempt', 'outbox', ['status', 'next_attempt_at'], unique=False)


def downgrade():
    op.drop_index('ix_outbox_status_next_attempt', table_name='outbox')
    op.drop_table('outbox')
