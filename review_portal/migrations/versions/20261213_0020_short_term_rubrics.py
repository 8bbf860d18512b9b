"""Multi-level programs: ``programs`` and ``program_versions`` get ``multi_level``
(«Разноуровневая программа»), false for the programs and versions made before.

Revision ID: 0020
Revises: 0018 (to be chained after 0019 when that migration is merged)
Create Date: 2026-12-13 12:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = "0020"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade():
    for table in ("programs", "program_versions"):
        op.add_column(
            table,
            sa.Column("multi_level", sa.Boolean(), server_default=sa.false(), nullable=False),
        )


def downgrade():
    # In place (columns without constraints), on SQLite too.
    for table in ("program_versions", "programs"):
        op.drop_column(table, "multi_level")
