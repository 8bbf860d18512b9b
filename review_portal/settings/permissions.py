"""Who may read and change the center's settings."""

from __future__ import annotations

from review_portal.permissions import is_staff


def can_manage_settings(user) -> bool:
    """Coordinators and administrators (whatever other roles they hold: the settings belong
    to no review, so no seat on a review narrows this)."""
    return is_staff(user)
