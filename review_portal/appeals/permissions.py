"""Who may do what with appeals, as predicates (routes and templates ask them; the services
check the same rules themselves).

* The provider of the program files an appeal against its valid, appealable conclusion and
  reads its appeals.
* Coordinators and administrators read every appeal and handle it, except an appeal whose
  panel or appealed review they sit on as an expert (a role never widens a relation).
* The panel's experts read the appeal's files while on the panel.
* The decision on a dismissed appeal: its public verification page shows what it prints
  publicly; its PDF goes to the provider and the staff.
"""

from __future__ import annotations

from review_portal.appeals.models import Appeal
from review_portal.enums import AppealState, Role
from review_portal.permissions import SEATED_STATUSES, has_role, holds_assignment, is_staff, sits_on
from review_portal.programs.permissions import acts_for_program, is_provider_of


def can_file_appeal(user, conclusion) -> bool:
    """The acting provider of the program, while the conclusion may be appealed."""
    from review_portal.appeals.services import appealable_refusal

    review = conclusion.review
    return acts_for_program(user, review.program) and appealable_refusal(conclusion) is None


def can_list_appeals(user) -> bool:
    return is_staff(user)


def is_panel_expert(user, appeal: Appeal) -> bool:
    return (
        appeal.panel_review is not None
        and has_role(user, Role.EXPERT)
        and holds_assignment(user, appeal.panel_review, SEATED_STATUSES)
    )


def handles_appeal(user, appeal: Appeal) -> bool:
    """Staff not sitting on the appealed review or on the panel."""
    if not is_staff(user) or sits_on(user, appeal.review):
        return False
    return appeal.panel_review is None or not sits_on(user, appeal.panel_review)


def can_view_appeal(user, appeal: Appeal) -> bool:
    return handles_appeal(user, appeal) or is_provider_of(user, appeal.review.program)


def can_handle_appeal(user, appeal: Appeal) -> bool:
    """Accept, refuse or decide: while the appeal is open."""
    return handles_appeal(user, appeal) and appeal.state in (
        AppealState.FILED,
        AppealState.ACCEPTED,
    )


def can_download_appeal_file(user, appeal: Appeal) -> bool:
    return can_view_appeal(user, appeal) or is_panel_expert(user, appeal)


def can_download_appeal_decision(user, appeal: Appeal) -> bool:
    return appeal.number is not None and (
        handles_appeal(user, appeal) or is_provider_of(user, appeal.review.program)
    )


#: Exposed to the templates.
TEMPLATE_PREDICATES = {
    "can_file_appeal": can_file_appeal,
    "can_view_appeal": can_view_appeal,
    "can_handle_appeal": can_handle_appeal,
    "can_download_appeal_decision": can_download_appeal_decision,
    "can_list_appeals": can_list_appeals,
}
