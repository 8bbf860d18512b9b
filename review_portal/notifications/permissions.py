"""Who may read the development mailbox (the center's staff, who see what the portal sends
everyone), and who may read notifications and choose how they come (every signed-in
user, their own only)."""

from __future__ import annotations

from review_portal.permissions import is_approved, is_staff


def can_read_dev_mail(user) -> bool:
    return is_staff(user)


def can_read_notifications(user) -> bool:
    """Every approved user has notifications of their own (and only sees those)."""
    return is_approved(user)


def can_open_notification(user, notification) -> bool:
    return is_approved(user) and notification.user_id == user.id


def can_choose_digest(user) -> bool:
    """The daily digest lists the center's work: for the staff."""
    return is_staff(user)
