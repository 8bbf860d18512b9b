"""Who may follow background jobs: the center's staff (they start them)."""

from __future__ import annotations

from review_portal.permissions import is_staff


def can_view_jobs(user) -> bool:
    return is_staff(user)


def can_view_job(user, job) -> bool:
    return is_staff(user)
