"""Who may download a conclusion's PDF and who may revoke a conclusion.

The verification page (``/verify/<number>``) is public and says nothing private, so it needs
no predicate. The PDF itself holds the experts' anonymous scores and recommendations: it is
public once the program is in the published registry, and before that only for those the
review concerns — the provider, the center's staff, the review's experts and the municipal
viewer of the program's municipality.
"""

from __future__ import annotations

from sqlalchemy import exists, select
from sqlalchemy.orm import aliased

from review_portal.enums import AssignmentStatus, ConclusionStatus, RegistryEntryStatus, Role
from review_portal.extensions import db
from review_portal.permissions import has_role, is_staff
from review_portal.programs.permissions import is_municipal_viewer_of, is_provider_of
from review_portal.reconciliation.permissions import holds_assignment
from review_portal.registry.models import RegistrySnapshot, RegistrySnapshotItem
from review_portal.workflow import DECISION_STATES

#: Assignments that make an expert one of the review's experts: completed only — an expert
#: who has not submitted must not read the others' scores (blind review).
REVIEW_EXPERT_STATUSES = (AssignmentStatus.COMPLETED,)


def is_in_published_registry(program) -> bool:
    """The program is listed in the latest published snapshot of a registry kind.

    Only the newest snapshot of each kind counts (an older one is history: a program
    removed since then is no longer published). No snapshot at all: ``False``.
    """
    newer = aliased(RegistrySnapshot, name="newer_snapshot")
    row = db.session.execute(
        select(RegistrySnapshotItem.id)
        .join(RegistrySnapshot, RegistrySnapshot.id == RegistrySnapshotItem.snapshot_id)
        .where(
            RegistrySnapshotItem.program_id == program.id,
            RegistrySnapshotItem.status != RegistryEntryStatus.REMOVED,
            ~exists().where(
                newer.kind == RegistrySnapshot.kind, newer.number > RegistrySnapshot.number
            ),
        )
        .limit(1)
    ).first()
    return row is not None


def is_review_expert(user, review) -> bool:
    """An expert who has submitted their sheet on ``review``."""
    return has_role(user, Role.EXPERT) and holds_assignment(user, review, REVIEW_EXPERT_STATUSES)


def is_entitled_to_conclusion(user, conclusion) -> bool:
    """Those the review concerns, whatever the registry says."""
    if is_staff(user):
        return True
    review = conclusion.review
    program = review.program
    return (
        is_provider_of(user, program)
        or is_municipal_viewer_of(user, program)
        or is_review_expert(user, review)
    )


def can_download_conclusion(user, conclusion) -> bool:
    """The stored PDF: anyone once the program is in the published registry, else those
    entitled (:func:`is_entitled_to_conclusion`)."""
    return is_entitled_to_conclusion(user, conclusion) or is_in_published_registry(
        conclusion.review.program
    )


def can_revoke_conclusion(user, conclusion) -> bool:
    """A coordinator or an administrator, while the conclusion is valid and its review still
    stands decided (the same conditions ``revoke_conclusion`` enforces)."""
    return (
        is_staff(user)
        and conclusion.status == ConclusionStatus.VALID
        and conclusion.review.state in DECISION_STATES
    )


#: Exposed to templates, so a link or a form shows exactly when the action is allowed.
TEMPLATE_PREDICATES = {
    "can_download_conclusion": can_download_conclusion,
    "can_revoke_conclusion": can_revoke_conclusion,
}
