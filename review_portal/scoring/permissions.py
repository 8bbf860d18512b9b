"""Who may fill in, read and reopen a score sheet.

Blind review: apart from the staff, only the assigned expert ever reaches a sheet; providers
and municipal viewers never do. A member of the staff who sits on the review as an expert
reads the other sheets only once their own is submitted, and never reopens one there
(:func:`review_portal.permissions.sits_on`).
"""

from __future__ import annotations

from review_portal.enums import AssignmentStatus, Role, SheetStatus
from review_portal.permissions import has_role, is_staff, sits_on


def is_own_assignment(user, assignment) -> bool:
    return has_role(user, Role.EXPERT) and assignment.expert_id == user.id


def can_score(user, assignment) -> bool:
    """Save or submit: the assigned expert, the assignment accepted, the sheet not submitted."""
    sheet = assignment.sheet
    return (
        is_own_assignment(user, assignment)
        and assignment.status == AssignmentStatus.ACCEPTED
        and (sheet is None or sheet.status == SheetStatus.DRAFT)
    )


def reads_as_staff(user, review) -> bool:
    """The staff's reading of a review's sheets: not while they sit on it unsubmitted."""
    return is_staff(user) and not sits_on(user, review, open_only=True)


def can_open_sheet_page(user, assignment) -> bool:
    """The sheet page: its expert once the assignment is accepted (read-only after
    submitting), or the staff (:func:`reads_as_staff`)."""
    return reads_as_staff(user, assignment.review) or (
        is_own_assignment(user, assignment)
        and assignment.status in (AssignmentStatus.ACCEPTED, AssignmentStatus.COMPLETED)
    )


def can_view_sheet(user, sheet) -> bool:
    """A sheet read-only: its own expert, or the staff (:func:`reads_as_staff`)."""
    return is_own_assignment(user, sheet.assignment) or reads_as_staff(
        user, sheet.assignment.review
    )


def can_view_history(user) -> bool:
    return has_role(user, Role.EXPERT)


def can_reopen_sheet(user, sheet) -> bool:
    """Staff not sitting on the review, a submitted sheet, its review not yet decided."""
    from review_portal.reviews.services import REOPENABLE_STATES

    return (
        is_staff(user)
        and sheet.status == SheetStatus.SUBMITTED
        and sheet.assignment.review.state in REOPENABLE_STATES
        and not sits_on(user, sheet.assignment.review)
    )


TEMPLATE_PREDICATES = {
    "can_score": can_score,
    "can_view_sheet": can_view_sheet,
    "can_reopen_sheet": can_reopen_sheet,
    "can_view_history": can_view_history,
}
