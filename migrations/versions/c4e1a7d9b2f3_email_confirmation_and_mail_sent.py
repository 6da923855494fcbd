"""Email confirmation (users.email_confirmed_at) and mail_sent, the per-mailbox send log

Existing accounts start unconfirmed: nothing proved that their address is theirs, so no
verification email goes to it until they confirm (they are asked at their next sign-in).

Revision ID: c4e1a7d9b2f3
Revises: 7c1e5a9d3b20
Create Date: 2026-11-27 18:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'c4e1a7d9b2f3'
down_revision = '7c1e5a9d3b20'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_confirmed_at', sa.DateTime(), nullable=True))
    op.create_table('mail_sent',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('delivery_key', sa.String(length=254), nullable=False),
    sa.Column('template', sa.String(length=40), nullable=False),
    sa.Column('sent_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('mail_sent', schema=None) as batch_op:
        batch_op.create_index('ix_mail_sent_key_time', ['delivery_key', 'sent_at'], unique=False)


def downgrade():
    with op.batch_alter_table('mail_sent', schema=None) as batch_op:
        batch_op.drop_index('ix_mail_sent_key_time')
    op.drop_table('mail_sent')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('email_confirmed_at')
