"""Sessions that end: a per-user session version, part of every session's and "remember
me" cookie's identity, raised at logout, on a new password, on deactivation and on other
roles, so every earlier cookie of the user stops working.

One column with a server default (existing users start at 0), added and dropped in place
(``ALTER TABLE``; SQLite drops columns natively since 3.35): a copy-and-move batch would drop
``users``, which every other table references, and SQLite's foreign keys refuse that.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 18:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        'users',
        sa.Column('session_version', sa.Integer(), server_default=sa.text('0'), nullable=False),
    )


def downgrade():
    op.drop_column('users', 'session_version')
