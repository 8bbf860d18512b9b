"""Jobs that survive faults: a heartbeat, the interruptions counted, the broker's refusal.

* ``heartbeat_at``: when the runner of a running job last said it was alive (at every
  committed unit and every ``JOB_HEARTBEAT_SECONDS``); the sweeper requeues a running job
  whose heartbeat is older than ``JOB_STALE_AFTER_SECONDS``.
* ``interruptions``: how many times the job was found running with nobody running it (its
  worker killed) and started again.
* ``dispatch_error``: why the job could not be handed to the job queue (the broker
  unreachable); cleared once it is. The sweeper sends such jobs again.

Three columns added (nullable, or with a server default); on SQLite through a batch
(copy-and-move) as Alembic does.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-09 09:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("interruptions", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("dispatch_error", sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("dispatch_error")
        batch_op.drop_column("interruptions")
        batch_op.drop_column("heartbeat_at")
