"""Who may download a conclusion's PDF and who may revoke a conclusion.

The verification page (``/verify/<number>``) is public and says nothing private, so it needs
no predicate. The PDF itself holds the experts' anonymous scores and recommendations: it is
public once the published registry lists the program on that conclusion, and otherwise only
for those the review concerns — the provider, the center's staff, the review's experts and
the municipal viewer of the program's municipality.
"""

from __future__ import annotations

import functools

import sqlalchemy as sa
from sqlalchemy import exists, select
from sqlalchemy.orm import aliased

from review_portal.enums import AssignmentStatus, ConclusionStatus, RegistryEntryStatus, Role
from review_portal.extensions import db
from review_portal.permissions import has_role, holds_assignment, is_staff, sits_on
from review_portal.programs.permissions import is_municipal_viewer_of, is_provider_of
from review_portal.registry.models import RegistrySnapshot, RegistrySnapshotItem
from review_portal.workflow import DECISION_STATES

#: Assignments that make an expert one of the review's experts: completed only — an expert
#: who has not submitted must not read the others' scores (blind review).
REVIEW_EXPERT_STATUSES = (AssignmentStatus.COMPLETED,)


def _published_items(*conditions):
    """Rows of the latest published snapshot of each kind matching ``conditions``. Only the
    newest snapshot of a kind counts (an older one is history)."""
    newer = aliased(RegistrySnapshot, name="newer_snapshot")
    return (
        select(RegistrySnapshotItem.id)
        .join(RegistrySnapshot, RegistrySnapshot.id == RegistrySnapshotItem.snapshot_id)
        .where(
            *conditions,
            RegistrySnapshotItem.status != RegistryEntryStatus.REMOVED,
            ~exists().where(
                newer.kind == RegistrySnapshot.kind, newer.number > RegistrySnapshot.number
            ),
        )
        .limit(1)
    )


@functools.cache
def _program_published():
    # Built once (building costs more CPU than running it); the values are bound per call.
    return _published_items(RegistrySnapshotItem.program_id == sa.bindparam("program_id"))


@functools.cache
def _conclusion_published():
    return _published_items(
        RegistrySnapshotItem.program_id == sa.bindparam("program_id"),
        RegistrySnapshotItem.conclusion_number == sa.bindparam("number"),
    )


def is_in_published_registry(program) -> bool:
    """The program is listed in the latest published snapshot of a registry kind (no
    snapshot at all: ``False``)."""
    row = db.session.execute(_program_published(), {"program_id": program.id}).first()
    return row is not None


def is_published_conclusion(conclusion) -> bool:
    """``conclusion`` is the one a latest published snapshot lists: its program is in the
    registry *on this conclusion*. A revoked or superseded conclusion of a program that is
    in the registry on a newer one is not public."""
    row = db.session.execute(
        _conclusion_published(),
        {"program_id": conclusion.review.program_id, "number": conclusion.number},
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
    """The stored PDF: anyone once the registry publishes the program on this conclusion,
    else those entitled (:func:`is_entitled_to_conclusion`)."""
    return is_entitled_to_conclusion(user, conclusion) or is_published_conclusion(conclusion)


def can_revoke_conclusion(user, conclusion) -> bool:
    """A coordinator or an administrator, while the conclusion is valid, its review still
    stands decided and is the program's current one (the same conditions
    ``revoke_conclusion`` enforces)."""
    review = conclusion.review
    return (
        is_staff(user)
        and conclusion.status == ConclusionStatus.VALID
        and review.state in DECISION_STATES
        and review.program.current_review_id == review.id
        and not sits_on(user, review)
    )


#: Exposed to templates, so a link or a form shows exactly when the action is allowed.
TEMPLATE_PREDICATES = {
    "can_download_conclusion": can_download_conclusion,
    "can_revoke_conclusion": can_revoke_conclusion,
}
