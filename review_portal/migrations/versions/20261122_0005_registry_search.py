"""Registry: the case-folded search text of snapshot items and the indexes for sorting.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 21:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMN / CREATE INDEX: no table rebuild on SQLite.
    op.add_column(
        'registry_snapshot_items',
        sa.Column('search_text', sa.Text(), server_default='', nullable=False),
    )
    op.create_index(
        'ix_registry_snapshot_items_number', 'registry_snapshot_items',
        ['snapshot_id', 'registry_number'],
    )
    op.create_index(
        'ix_registry_snapshot_items_title', 'registry_snapshot_items', ['snapshot_id', 'title'],
    )


def downgrade():
    op.drop_index('ix_registry_snapshot_items_title', table_name='registry_snapshot_items')
    op.drop_index('ix_registry_snapshot_items_number', table_name='registry_snapshot_items')
    op.drop_column('registry_snapshot_items', 'search_text')
