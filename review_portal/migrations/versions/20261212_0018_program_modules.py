"""Modules of programs: a JSON list on the program and on each submitted version, and
copied into registry snapshots.

Programs and versions made before have no modules (an empty list).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-12 12:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade():
    for table in ("programs", "program_versions", "registry_snapshot_items"):
        op.add_column(
            table, sa.Column("modules", sa.JSON(), server_default=sa.text("'[]'"), nullable=False)
        )


def downgrade():
    # In place (columns without constraints), on SQLite too.
    for table in ("registry_snapshot_items", "program_versions", "programs"):
        op.drop_column(table, "modules")
