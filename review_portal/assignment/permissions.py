"""Who may answer an assignment and who may manage a review's experts.

Answering (accept, decline) is the assigned expert's alone; the state is the service's to
check, so a late click gets a message rather than a 403. Managing a review's experts is the
staff's, except on a review they sit on (:func:`review_portal.permissions.is_staff_on`).
"""

from __future__ import annotations

from review_portal.enums import Role
from review_portal.permissions import has_role


def can_respond_to_assignment(user, assignment) -> bool:
    """The assigned expert: the only one who may accept or decline it (the state is the
    service's to check, so a late click gets a message rather than a 403)."""
    return has_role(user, Role.EXPERT) and assignment.expert_id == user.id
