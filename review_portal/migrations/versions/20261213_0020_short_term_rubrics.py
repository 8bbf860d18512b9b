"""A rubric chosen apart for a program type's short-term programs, and multi-level programs.

``active_rubrics`` gets ``short_term`` as part of its primary key: the existing choices are
the regular ones (false). ``programs`` and ``program_versions`` get ``multi_level``
(«Разноуровневая программа»), false for the programs and versions made before.

On SQLite a primary key cannot be altered in place: ``active_rubrics`` (which no table
refers to) is rebuilt, its rows kept. A downgrade drops the short-term choices first (the
old key has room for one choice per type only).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-13 12:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

PK = "pk_active_rubrics"


def upgrade():
    for table in ("programs", "program_versions"):
        op.add_column(
            table,
            sa.Column("multi_level", sa.Boolean(), server_default=sa.false(), nullable=False),
        )
    column = sa.Column("short_term", sa.Boolean(), server_default=sa.false(), nullable=False)
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("active_rubrics", recreate="always") as batch_op:
            # Dropped first so the copied column is no longer marked as the whole key.
            batch_op.drop_constraint(PK, type_="primary")
            batch_op.add_column(column)
            batch_op.create_primary_key(PK, ["program_type", "short_term"])
        return
    op.add_column("active_rubrics", column)
    op.drop_constraint(PK, "active_rubrics", type_="primary")
    op.create_primary_key(PK, "active_rubrics", ["program_type", "short_term"])


def downgrade():
    op.execute(sa.text("DELETE FROM active_rubrics WHERE short_term = :yes").bindparams(yes=True))
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("active_rubrics", recreate="always") as batch_op:
            batch_op.drop_constraint(PK, type_="primary")
            batch_op.drop_column("short_term")
            batch_op.create_primary_key(PK, ["program_type"])
    else:
        op.drop_constraint(PK, "active_rubrics", type_="primary")
        op.create_primary_key(PK, "active_rubrics", ["program_type"])
        op.drop_column("active_rubrics", "short_term")
    # In place (columns without constraints), on SQLite too.
    for table in ("program_versions", "programs"):
        op.drop_column(table, "multi_level")
