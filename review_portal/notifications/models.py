"""Outgoing e-mail written in the same transaction as its cause, in-app notifications, and
what each user chose to receive by e-mail."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from review_portal.db import enum_column, utcnow
from review_portal.enums import NotificationKind, OutboxStatus
from review_portal.extensions import db


class OutboxMessage(db.Model):
    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    to_email: Mapped[str] = mapped_column(sa.String(255))
    subject: Mapped[str] = mapped_column(sa.String(255))
    body: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[OutboxStatus] = mapped_column(
        enum_column(OutboxStatus), default=OutboxStatus.PENDING
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(sa.Text)

    __table_args__ = (sa.Index("ix_outbox_messages_due", "status", "next_attempt_at"),)


class Notification(db.Model):
    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[NotificationKind] = mapped_column(enum_column(NotificationKind))
    text: Mapped[str] = mapped_column(sa.Text)
    link: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        sa.Index("ix_notifications_user_unread", "user_id", "read_at"),
        # The list of a user's notifications, newest first.
        sa.Index("ix_notifications_user_newest", "user_id", "id"),
    )


class NotificationSettings(db.Model):
    """A user's choices; no row means the defaults (every kind by e-mail, no digest)."""

    __tablename__ = "notification_settings"

    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    #: Kinds (values of :class:`NotificationKind`) shown in the portal only, not mailed.
    muted_kinds: Mapped[list] = mapped_column(sa.JSON, default=list)
    #: Staff only: the center's work comes in one daily e-mail instead of one per event.
    daily_digest: Mapped[bool] = mapped_column(default=False)
    #: The day (the center's time zone) of the last digest sent: never two in a day.
    digest_sent_on: Mapped[date | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
