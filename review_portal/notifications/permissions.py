"""Who may read the development mailbox: the center's staff (coordinators and
administrators), who see what the portal sends everyone."""

from __future__ import annotations

from review_portal.permissions import is_staff


def can_read_dev_mail(user) -> bool:
    return is_staff(user)
