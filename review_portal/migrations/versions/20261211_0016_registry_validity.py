"""Validity of registry entries: each entry's end date, whether the next publication dates
it, and the reminders sent before it ends; the end date copied into snapshots.

Entries published before have no end date (they were published without one) and are not
dated again; entries waiting for their first publication are dated by it.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-11 12:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("registry_entries", sa.Column("valid_until", sa.Date(), nullable=True))
    op.add_column(
        "registry_entries",
        sa.Column("end_date_pending", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column("registry_entries", sa.Column("reminded_90_on", sa.Date(), nullable=True))
    op.add_column("registry_entries", sa.Column("reminded_30_on", sa.Date(), nullable=True))
    op.execute(
        "UPDATE registry_entries SET end_date_pending = "
        + ("1" if op.get_bind().dialect.name == "sqlite" else "true")
        + " WHERE status = 'pending_inclusion'"
    )
    op.add_column("registry_snapshot_items", sa.Column("valid_until", sa.Date(), nullable=True))


def downgrade():
    # In place (columns without constraints), on SQLite too.
    op.drop_column("registry_snapshot_items", "valid_until")
    op.drop_column("registry_entries", "reminded_30_on")
    op.drop_column("registry_entries", "reminded_90_on")
    op.drop_column("registry_entries", "end_date_pending")
    op.drop_column("registry_entries", "valid_until")
