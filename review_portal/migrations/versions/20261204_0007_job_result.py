"""Jobs: what a job produced (``result``: counts, a file), shown on its page.

One nullable column added; on SQLite through a batch (copy-and-move) as Alembic does.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 20:55:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('result', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('result')
