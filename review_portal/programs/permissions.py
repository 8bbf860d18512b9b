"""Who may see, edit, submit, withdraw and screen a program, download its files and read
the result of its review.

Plain predicates of the user's role, their relation to the program (own organization,
own municipality, own assignment) and the program's state.
"""

from __future__ import annotations

import functools

import sqlalchemy as sa
from sqlalchemy import select

from review_portal.enums import AccountStatus, AssignmentStatus, Role
from review_portal.extensions import db
from review_portal.permissions import has_role, is_staff, is_staff_on
from review_portal.workflow import DECISION_STATES, EDITABLE_STATES, ReviewState, can_advance


def is_provider_of(user, program) -> bool:
    """An approved applicant of the program's organization."""
    return (
        has_role(user, Role.APPLICANT)
        and user.organization_id is not None
        and user.organization_id == program.organization_id
    )


def acts_for_program(user, program) -> bool:
    """The provider acting for the program's organization: not once the center has
    transferred the organization's ИНН to another registration (its users still read its
    programs, results and conclusions)."""
    return is_provider_of(user, program) and program.organization.inn_lost_at is None


def can_create_program(user) -> bool:
    return (
        has_role(user, Role.APPLICANT)
        and user.organization is not None
        and user.organization.status == AccountStatus.APPROVED
    )


@functools.cache
def _live_assignment_on():
    # Built once per process (the sheet page asks; building costs more than running).
    from review_portal.assignment.models import Assignment
    from review_portal.reviews.models import Review

    return (
        select(Assignment.id)
        .join(Review, Assignment.review_id == Review.id)
        .where(
            Review.program_id == sa.bindparam("program_id"),
            Assignment.expert_id == sa.bindparam("user_id"),
            Assignment.status.notin_([AssignmentStatus.DECLINED, AssignmentStatus.WITHDRAWN]),
        )
        .limit(1)
    )


def is_assigned_expert(user, program) -> bool:
    """An expert with a live (not declined or withdrawn) assignment on any of its reviews."""
    if not has_role(user, Role.EXPERT):
        return False
    return (
        db.session.execute(
            _live_assignment_on(), {"program_id": program.id, "user_id": user.id}
        ).first()
        is not None
    )


def is_municipal_viewer_of(user, program) -> bool:
    return (
        has_role(user, Role.MUNICIPAL)
        and user.municipality_id is not None
        and user.municipality_id == program.municipality_id
    )


def can_view_program(user, program) -> bool:
    return (
        is_staff(user)
        or is_provider_of(user, program)
        or is_municipal_viewer_of(user, program)
        or is_assigned_expert(user, program)
    )


def can_edit_program(user, program) -> bool:
    return acts_for_program(user, program) and program.state in EDITABLE_STATES


def can_manage_documents(user, program) -> bool:
    """Upload and remove the working files: the provider, while the program is editable."""
    return can_edit_program(user, program)


def can_download_documents(user, program) -> bool:
    """The files of submitted versions: whoever may read the program."""
    return can_view_program(user, program)


def can_download_working_documents(user, program) -> bool:
    """The working files (not yet submitted) are for the provider and the staff only."""
    return is_provider_of(user, program) or is_staff(user)


def can_submit_program(user, program) -> bool:
    return acts_for_program(user, program) and program.state in (
        ReviewState.DRAFT,
        ReviewState.RETURNED,
        ReviewState.REVISION_REQUIRED,
    )


def can_renew_program(user, program) -> bool:
    """Submit an admitted program for renewal: its acting provider, within the window
    before its registry entry ends (the service checks the same)."""
    from review_portal.programs.services import renewal_entry

    return acts_for_program(user, program) and renewal_entry(program) is not None


def can_withdraw_program(user, program) -> bool:
    review = program.current_review
    return review is not None and can_advance(review, ReviewState.WITHDRAWN, user)


def can_screen_program(user, program) -> bool:
    """Accept into expertise or return for fixes: a coordinator, while it is submitted."""
    return (
        program.state == ReviewState.SUBMITTED
        and program.current_review is not None
        and is_staff_on(user, program.current_review)
    )


def can_view_screening_queue(user) -> bool:
    return is_staff(user)


def can_view_program_list(user) -> bool:
    return is_staff(user) or has_role(user, Role.APPLICANT, Role.MUNICIPAL)


def can_import(user) -> bool:
    return is_staff(user)


#: Exposed to templates, so a button shows exactly when the action is allowed.
#: States in which a review has a decision the provider may read.
RESULT_STATES = DECISION_STATES | {ReviewState.EXCLUDED}


def can_view_result(user, review) -> bool:
    """The decision, final scores and anonymous comments: the program's provider, the
    municipal viewer of its municipality, the staff — once decided."""
    if review.state not in RESULT_STATES or review.decision is None:
        return False
    program = review.program
    return is_staff(user) or is_provider_of(user, program) or is_municipal_viewer_of(user, program)


TEMPLATE_PREDICATES = {
    "can_view_result": can_view_result,
    "can_create_program": can_create_program,
    "can_view_program": can_view_program,
    "can_edit_program": can_edit_program,
    "can_manage_documents": can_manage_documents,
    "can_download_documents": can_download_documents,
    "can_download_working_documents": can_download_working_documents,
    "can_submit_program": can_submit_program,
    "can_withdraw_program": can_withdraw_program,
    "can_renew_program": can_renew_program,
    "can_screen_program": can_screen_program,
    "can_view_screening_queue": can_view_screening_queue,
    "can_view_program_list": can_view_program_list,
    "can_import": can_import,
}
