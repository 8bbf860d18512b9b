"""Several registry kinds per program: the other kinds a program (and each submitted
version) asks for, beside its main kind, as a JSON list of kinds' values.

Programs and versions made before ask for their main kind only (an empty list).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-13 12:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade():
    for table in ("programs", "program_versions"):
        op.add_column(
            table,
            sa.Column(
                "additional_registry_kinds",
                sa.JSON(),
                server_default=sa.text("'[]'"),
                nullable=False,
            ),
        )


def downgrade():
    # In place (columns without constraints), on SQLite too.
    for table in ("program_versions", "programs"):
        op.drop_column(table, "additional_registry_kinds")
