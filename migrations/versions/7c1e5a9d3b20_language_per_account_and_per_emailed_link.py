"""Language per account (pages, emails, reminders) and per emailed link (it opens in its email's language)

Revision ID: 7c1e5a9d3b20
Revises: bdc3c6ed2f0a
Create Date: 2026-11-27 17:55:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7c1e5a9d3b20'
down_revision = 'bdc3c6ed2f0a'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users') as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(length=10), nullable=True))
    with op.batch_alter_table('recovery_links') as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(length=10), nullable=True))


def downgrade():
    with op.batch_alter_table('recovery_links') as batch_op:
        batch_op.drop_column('locale')
    with op.batch_alter_table('users') as batch_op:
        batch_op.drop_column('locale')
