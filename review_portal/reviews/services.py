"""Changing the review case itself: its row lock, the coordinator's decision and putting a
settled review back in review when a sheet is reopened.

The steps between the sheets and the decision (divergence, third expert, discussion, a
coordinator's direct resolution) live in :mod:`review_portal.reconciliation.services`.
Services lock the review row, flush and audit; the caller commits.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from review_portal.accounts.models import User
from review_portal.audit.services import record_event
from review_portal.db import utcnow
from review_portal.enums import AppealState, AssignmentRole, Decision, ReviewKind
from review_portal.errors import DomainError
from review_portal.extensions import db
from review_portal.permissions import authorize_staff_on
from review_portal.reviews.models import Review
from review_portal.reviews.queries import review_sheets
from review_portal.workflow import ReviewState, advance

DECISION_TARGETS = {
    Decision.ADMITTED: ReviewState.ADMITTED,
    Decision.REVISION_REQUIRED: ReviewState.REVISION_REQUIRED,
    Decision.REJECTED: ReviewState.REJECTED,
}

#: Longest justification or reason accepted (characters).
MAX_TEXT = 10_000


class ReviewError(DomainError):
    """An operation on a review refused for a reason the user should read."""


#: Issues the conclusion of a decided review (``issuer(review, actor)``, raising
#: :class:`ReviewError` when it cannot): registered by :mod:`review_portal.conclusions.services`,
#: which sits above the review case and imports it, so this module does not import it back.
_conclusion_issuers: list = []


def issue_conclusions_with(issuer) -> None:
    """Register the function :func:`decide_review` calls to issue the conclusion."""
    _conclusion_issuers[:] = [issuer]


def _issue_conclusion(review: Review, actor: User) -> None:
    if not _conclusion_issuers:
        raise RuntimeError("no conclusion issuer: import review_portal.conclusions.services")
    _conclusion_issuers[0](review, actor)


def lock_review(review: Review) -> Review:
    """Take the review's row lock for the rest of the transaction and reload it, so two
    experts submitting or revising at the same moment settle the review once."""
    return db.session.execute(
        select(Review)
        .where(Review.id == review.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def awaits_appeal_decision(review: Review) -> bool:
    """``review`` is the panel of an appeal still open: only the appeal decides it (after
    the appeal, a revoked conclusion of the panel is decided again as any other)."""
    from review_portal.appeals.models import Appeal

    if review.kind != ReviewKind.APPEAL:
        return False
    return (
        db.session.execute(
            select(Appeal.id).where(
                Appeal.panel_review_id == review.id, Appeal.state == AppealState.ACCEPTED
            )
        ).first()
        is not None
    )


def check_decision(
    review: Review, decision: Decision, justification: str, *, for_appeal: bool = False
) -> None:
    """Raise :class:`ReviewError` when ``decision`` (with the stripped ``justification``)
    cannot be recorded on ``review`` now: not awaiting a decision, an appeal panel's review
    outside its appeal (``for_appeal``: the appeals service asks), an override without a
    justification, a text too long. Reads only (the confirmation page asks it too)."""
    if review.state != ReviewState.AWAITING_DECISION:
        raise ReviewError(_l("This review is not awaiting a decision."))
    if for_appeal and review.kind != ReviewKind.APPEAL:
        raise ReviewError(_l("This review is not an appeal panel's."))
    if not for_appeal and awaits_appeal_decision(review):
        raise ReviewError(_l("An appeal panel's review is decided on the page of its appeal."))
    if decision != review.computed_decision and not justification:
        raise ReviewError(
            _l("A decision other than the computed one needs a written justification.")
        )
    if len(justification) > MAX_TEXT:
        raise ReviewError(_l("The text is too long."))


def decide_review(
    review: Review,
    actor: User,
    decision: Decision | str,
    justification: str | None = None,
    *,
    issue: bool = True,
    for_appeal: bool = False,
) -> Review:
    """Confirm the computed decision, or override it with a written justification (kept on
    the review, in its timeline and in the audit, and printed in the conclusion).

    The conclusion is issued in the same transaction (``issue=False``: a bulk run issues it
    itself, in parallel); a rendering failure raises :class:`ReviewError` and the
    caller rolls back, so no number is consumed."""
    authorize_staff_on(actor, review)
    review = lock_review(review)
    decision = Decision(decision)
    justification = (justification or "").strip()
    check_decision(review, decision, justification, for_appeal=for_appeal)
    override = decision != review.computed_decision
    review.decision = decision
    review.override_reason = justification if override else None
    review.decided_at = utcnow()
    review.decided_by_id = actor.id
    advance(review, DECISION_TARGETS[decision], actor, reason=justification or None)
    if issue:
        _issue_conclusion(review, actor)
    record_event(
        "review.decide",
        actor=actor,
        object_type="review",
        object_id=review.id,
        before={"computed_decision": review.computed_decision},
        after={
            "decision": decision,
            "override": override,
            "justification": justification or None,
        },
    )
    # The provider is told when the conclusion is issued (its number and verification
    # link in the message), by the appeals service of an appeal's outcome.
    return review


#: States in which a submitted sheet may be reopened (before the decision).
REOPENABLE_STATES = (
    ReviewState.IN_REVIEW,
    ReviewState.RECONCILIATION,
    ReviewState.AWAITING_DECISION,
)


def reset_review_for_reopen(review: Review, actor: User, reason: str) -> None:
    """A submitted sheet of ``review`` is being reopened: refused once the review is decided
    (:class:`ReviewError`); a settled or reconciling review goes back to
    ``in_review`` and its computed outcome is cleared (kept in the audit log)."""
    authorize_staff_on(actor, review)
    review = lock_review(review)
    if review.state not in REOPENABLE_STATES:
        raise ReviewError(_l("The review is decided; its score sheets can no longer be reopened."))
    if review.state == ReviewState.IN_REVIEW:
        return
    advance(review, ReviewState.IN_REVIEW, actor, reason=reason)
    # Third experts still on the review stay wanted; a request nobody took is dropped (the
    # divergence check runs again when the sheet is back).
    review.extra_experts = sum(
        1 for item in review_sheets(review, fresh=True) if item.role == AssignmentRole.THIRD
    )
    review.divergent = None
    review.divergence_rules = None
    review.final_result = None
    review.computed_decision = None
    review.resolution = None
    review.resolution_note = None
    review.resolved_at = None
    review.resolved_by_id = None
