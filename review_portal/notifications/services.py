"""Queueing e-mail in the outbox (same transaction as its cause) and delivering it afterwards.

Delivery goes through SMTP when ``SMTP_HOST`` is set and to the log otherwise (development).
A failed message is retried later with a growing delay; it is never lost.
"""

from __future__ import annotations

import smtplib
from datetime import timedelta
from email.message import EmailMessage

from flask import current_app
from sqlalchemy import select

from review_portal.db import utcnow
from review_portal.enums import OutboxStatus
from review_portal.extensions import db
from review_portal.notifications.models import Notification, OutboxMessage

MAX_ATTEMPTS = 8


def queue_email(to_email: str, subject: str, body: str) -> OutboxMessage:
    """Write a message to the outbox (sent after the transaction commits)."""
    message = OutboxMessage(to_email=to_email, subject=str(subject), body=str(body))
    db.session.add(message)
    return message


def notify(user, text: str, link: str | None = None) -> Notification:
    """Add an in-app notification for ``user``."""
    notification = Notification(user_id=user.id, text=str(text), link=link)
    db.session.add(notification)
    return notification


def _send(message: OutboxMessage) -> None:
    config = current_app.config
    if not config.get("SMTP_HOST"):
        current_app.logger.info(
            "mail to %s: %s\n%s", message.to_email, message.subject, message.body
        )
        return
    email = EmailMessage()
    email["From"] = config["MAIL_SENDER"]
    email["To"] = message.to_email
    email["Subject"] = message.subject
    email.set_content(message.body)
    with smtplib.SMTP(config["SMTP_HOST"], config["SMTP_PORT"], timeout=30) as smtp:
        smtp.send_message(email)


def deliver_outbox(limit: int = 100) -> int:
    """Send the messages that are due; returns how many were sent. Commits per message."""
    now = utcnow()
    due = (
        db.session.execute(
            select(OutboxMessage)
            .where(
                OutboxMessage.status == OutboxStatus.PENDING,
                OutboxMessage.next_attempt_at <= now,
            )
            .order_by(OutboxMessage.id)
            .limit(limit)
        )
        .scalars()
        .all()
    )
    sent = 0
    for message in due:
        message.attempts += 1
        try:
            _send(message)
        except (OSError, smtplib.SMTPException) as error:
            message.last_error = str(error)[:2000]
            if message.attempts >= MAX_ATTEMPTS:
                message.status = OutboxStatus.FAILED
            else:
                message.next_attempt_at = utcnow() + timedelta(minutes=2**message.attempts)
        else:
            message.status = OutboxStatus.SENT
            message.sent_at = utcnow()
            sent += 1
        db.session.commit()
    return sent
