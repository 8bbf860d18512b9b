"""Who may see and act on reconciliations, discussions and decisions.

Blind review holds here too: an expert sees the other sheets of a review only in its
discussion, numbered and without names; providers and municipal viewers see a result only
after the decision, and never an expert's name; names are for the staff.
"""

from __future__ import annotations

from review_portal.enums import AssignmentRole, AssignmentStatus, Role
from review_portal.permissions import has_role, is_staff, sits_on
from review_portal.workflow import ReviewState


def can_view_reconciliations(user) -> bool:
    """The lists of reviews in reconciliation and awaiting a decision."""
    return is_staff(user)


def can_view_reconciliation(user, review) -> bool:
    """The side-by-side page: staff, once the review's sheets have been checked."""
    return (
        is_staff(user)
        and review.divergent is not None
        and not sits_on(user, review, open_only=True)
    )


def can_resolve(user, review) -> bool:
    return (
        is_staff(user) and review.state == ReviewState.RECONCILIATION and not sits_on(user, review)
    )


def can_view_decision(user, review) -> bool:
    """The decision page: staff, once the review has a final result (read-only after the
    decision)."""
    return (
        is_staff(user)
        and review.final_result is not None
        and not sits_on(user, review, open_only=True)
    )


def can_decide(user, review) -> bool:
    return (
        is_staff(user)
        and review.state == ReviewState.AWAITING_DECISION
        and not sits_on(user, review)
    )


def can_see_expert_names(user, review) -> bool:
    """The experts' names: the staff, except on a review they sit on and have not scored."""
    return is_staff(user) and not sits_on(user, review, open_only=True)


def is_discussion_member(user, assignment) -> bool:
    """An initial expert of the review who submitted, and the review had a discussion."""
    return (
        has_role(user, Role.EXPERT)
        and assignment.expert_id == user.id
        and assignment.role == AssignmentRole.INITIAL
        and assignment.status == AssignmentStatus.COMPLETED
        and assignment.review.discussion_deadline is not None
    )


def can_view_discussion(user, assignment) -> bool:
    """The discussion page (read-only once it is closed)."""
    return is_discussion_member(user, assignment)


def can_revise_scores(user, assignment) -> bool:
    from review_portal.reconciliation.services import is_discussion_open

    return is_discussion_member(user, assignment) and is_discussion_open(assignment.review)


TEMPLATE_PREDICATES = {
    "can_view_reconciliations": can_view_reconciliations,
    "can_view_reconciliation": can_view_reconciliation,
    "can_resolve": can_resolve,
    "can_view_decision": can_view_decision,
    "can_decide": can_decide,
    "can_see_expert_names": can_see_expert_names,
    "can_view_discussion": can_view_discussion,
    "can_revise_scores": can_revise_scores,
}
