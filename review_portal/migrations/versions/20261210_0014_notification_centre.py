"""The notification centre: each notification's kind, and what each user receives by e-mail.

* ``notifications.kind``: what the notification is about (the kinds a user may choose to
  receive in the portal only); notifications written before have no kind of record and
  are given ``account``.
* ``ix_notifications_user_newest``: a user's list, newest first.
* ``notification_settings``: per user, the kinds not mailed, the daily digest (staff) and
  the day its last digest was sent. No row: every kind by e-mail, no digest.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-10 09:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

KINDS = ("assignments", "reminders", "discussions", "programs", "work_queue", "account")
CHECK = "kind IN ({})".format(", ".join(f"'{kind}'" for kind in KINDS))
CONSTRAINT = "ck_notifications_notificationkind"


def upgrade():
    if op.get_bind().dialect.name == "sqlite":
        # ALTER TABLE ADD COLUMN takes the CHECK inline (Alembic adds none on SQLite).
        op.execute(
            "ALTER TABLE notifications ADD COLUMN kind VARCHAR(11) DEFAULT 'account' NOT NULL "
            f"CONSTRAINT {CONSTRAINT} CHECK ({CHECK})"
        )
    else:
        op.add_column(
            "notifications",
            sa.Column("kind", sa.String(11), server_default="account", nullable=False),
        )
        op.create_check_constraint(op.f(CONSTRAINT), "notifications", CHECK)
    op.create_index("ix_notifications_user_newest", "notifications", ["user_id", "id"])
    op.create_table(
        "notification_settings",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("muted_kinds", sa.JSON(), nullable=False),
        sa.Column("daily_digest", sa.Boolean(), nullable=False),
        sa.Column("digest_sent_on", sa.Date(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_notification_settings_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_notification_settings")),
    )


def downgrade():
    op.drop_table("notification_settings")
    op.drop_index("ix_notifications_user_newest", table_name="notifications")
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("notifications", recreate="always") as batch_op:
            batch_op.drop_constraint(batch_op.f(CONSTRAINT), type_="check")
            batch_op.drop_column("kind")
    else:
        op.drop_constraint(op.f(CONSTRAINT), "notifications", type_="check")
        op.drop_column("notifications", "kind")
