"""Conclusions: the SHA-256 of the content, printed at the foot of the PDF.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 18:55:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD/DROP COLUMN: no table rebuild (other tables reference ``conclusions``).
    op.add_column('conclusions', sa.Column('content_sha256', sa.String(length=64), nullable=True))


def downgrade():
    op.drop_column('conclusions', 'content_sha256')
