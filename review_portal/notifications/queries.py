"""Reads of the outbox."""

from __future__ import annotations

from sqlalchemy import select

from review_portal.db import utcnow
from review_portal.enums import OutboxStatus
from review_portal.extensions import db
from review_portal.notifications.models import OutboxMessage


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
