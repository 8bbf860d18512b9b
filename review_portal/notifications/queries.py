"""Reads of the outbox, of a user's notifications and of their choices."""

from __future__ import annotations

import functools

import sqlalchemy as sa
from sqlalchemy import func, select

from review_portal.db import utcnow
from review_portal.enums import OutboxStatus
from review_portal.extensions import db
from review_portal.notifications.models import Notification, NotificationSettings, OutboxMessage


def due_message_exists() -> bool:
    """A pending message is due now (one indexed lookup: ``ix_outbox_messages_due``)."""
    return (
        db.session.execute(
            select(OutboxMessage.id)
            .where(
                OutboxMessage.status == OutboxStatus.PENDING,
                OutboxMessage.next_attempt_at <= utcnow(),
            )
            .limit(1)
        ).first()
        is not None
    )


def unread_count(user_id: int) -> int:
    """The user's unread notifications (the bell's number; ``ix_notifications_user_unread``)."""
    return db.session.execute(_unread(), {"user_id": user_id}).scalar_one()


@functools.cache
def _unread():
    # Built once per process: every page's bell runs it, and building costs more than running.
    return select(func.count(Notification.id)).where(
        Notification.user_id == sa.bindparam("user_id"), Notification.read_at.is_(None)
    )


def newest_first(user_id: int):
    """The statement of the user's notifications, newest first (to paginate)."""
    return (
        select(Notification).where(Notification.user_id == user_id).order_by(Notification.id.desc())
    )


def choices_of(user_id: int) -> NotificationSettings | None:
    """What the user chose (``None``: the defaults)."""
    return db.session.get(NotificationSettings, user_id)
