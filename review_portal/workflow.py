"""The state machines: the review's and the appeal's states, their transition tables and
their entry points.

A program's state is the state of its current review. Nothing but :func:`advance` changes
``Review.state``: it checks that the transition exists (for the review's kind: an appeal
panel opens by a transition of its own and is never submitted or withdrawn), that the actor may make it and that a
required reason is given, then stamps the time, keeps the transition in the review's
timeline and writes the audit record. An appeal's state changes only through
:func:`advance_appeal`, by the same checks against :data:`APPEAL_TRANSITIONS`. The tables
are data, so the tests walk all of them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask_babel import lazy_gettext as _l

from review_portal.audit.services import record_event
from review_portal.db import utcnow
from review_portal.enums import AccountStatus, AppealState, LabelledEnum, ReviewKind, Role
from review_portal.errors import DomainError, Forbidden
from review_portal.extensions import db
from review_portal.permissions import sits_on

if TYPE_CHECKING:
    from review_portal.accounts.models import User
    from review_portal.appeals.models import Appeal
    from review_portal.reviews.models import Review


class ReviewState(LabelledEnum):
    DRAFT = "draft", _l("Draft")
    SUBMITTED = "submitted", _l("Submitted")
    RETURNED = "returned", _l("Returned for fixes")
    IN_REVIEW = "in_review", _l("Under expert review")
    RECONCILIATION = "reconciliation", _l("Reconciliation")
    AWAITING_DECISION = "awaiting_decision", _l("Awaiting decision")
    ADMITTED = "admitted", _l("Admitted")
    REVISION_REQUIRED = "revision_required", _l("Revision required")
    REJECTED = "rejected", _l("Rejected")
    WITHDRAWN = "withdrawn", _l("Withdrawn")
    EXCLUDED = "excluded", _l("Excluded from the registry")


S = ReviewState

#: States after which the review case is over (a new version starts a new review).
FINAL_STATES = frozenset({S.ADMITTED, S.REVISION_REQUIRED, S.REJECTED, S.WITHDRAWN, S.EXCLUDED})
#: States in which the provider may change the program's data and files.
EDITABLE_STATES = frozenset({S.DRAFT, S.RETURNED, S.REVISION_REQUIRED})
DECISION_STATES = frozenset({S.ADMITTED, S.REVISION_REQUIRED, S.REJECTED})


class ActorKind(enum.StrEnum):
    """Who may make a transition: the program's provider, a coordinator, or the portal."""

    PROVIDER = "provider"
    COORDINATOR = "coordinator"
    SYSTEM = "system"


P, C, SYS = ActorKind.PROVIDER, ActorKind.COORDINATOR, ActorKind.SYSTEM


@dataclass(frozen=True)
class Transition:
    name: str
    source: ReviewState
    target: ReviewState
    actors: frozenset[ActorKind]
    #: Actor kinds that must give a written reason for this transition.
    reason_from: frozenset[ActorKind] = frozenset()
    #: The kinds of review the transition exists for.
    kinds: frozenset[ReviewKind] = frozenset(ReviewKind)


def _t(name, source, target, actors, reason_from=(), kinds=tuple(ReviewKind)):
    return Transition(
        name, source, target, frozenset(actors), frozenset(reason_from), frozenset(kinds)
    )


REGULAR, APPEAL = frozenset({ReviewKind.REGULAR}), frozenset({ReviewKind.APPEAL})


_WITHDRAWABLE = (
    S.DRAFT,
    S.SUBMITTED,
    S.RETURNED,
    S.IN_REVIEW,
    S.RECONCILIATION,
    S.AWAITING_DECISION,
)

TRANSITIONS: dict[tuple[ReviewState, ReviewState], Transition] = {
    (t.source, t.target): t
    for t in [
        _t("submit", S.DRAFT, S.SUBMITTED, {P}, kinds=REGULAR),
        # An accepted appeal opens its panel's review on the appealed version at once.
        _t("open_appeal", S.DRAFT, S.IN_REVIEW, {C}, kinds=APPEAL),
        _t("screen_ok", S.SUBMITTED, S.IN_REVIEW, {C}),
        _t("return_for_fixes", S.SUBMITTED, S.RETURNED, {C}, {C}),
        _t("edit", S.RETURNED, S.DRAFT, {P}),
        _t("diverge", S.IN_REVIEW, S.RECONCILIATION, {SYS}),
        _t("all_sheets_in", S.IN_REVIEW, S.AWAITING_DECISION, {SYS}),
        _t("resolve", S.RECONCILIATION, S.AWAITING_DECISION, {SYS, C}, {C}),
        _t("reopen", S.RECONCILIATION, S.IN_REVIEW, {C}, {C}),
        _t("reopen", S.AWAITING_DECISION, S.IN_REVIEW, {C}, {C}),
        _t("admit", S.AWAITING_DECISION, S.ADMITTED, {C}),
        _t("require_revision", S.AWAITING_DECISION, S.REVISION_REQUIRED, {C}),
        _t("reject", S.AWAITING_DECISION, S.REJECTED, {C}),
        _t("exclude", S.ADMITTED, S.EXCLUDED, {C}, {C}),
        # A revoked conclusion sends the review back for a new decision (and conclusion).
        *(_t("revoke", state, S.AWAITING_DECISION, {C}, {C}) for state in DECISION_STATES),
        *(_t("withdraw", state, S.WITHDRAWN, {P, C}, kinds=REGULAR) for state in _WITHDRAWABLE),
    ]
}


class WorkflowError(DomainError):
    """A transition that is not allowed; ``message`` is for the user, in their language."""


class TransitionNotAllowed(WorkflowError):
    pass


class ActorNotAllowed(Forbidden, WorkflowError):
    """The actor may not make this transition (a 403 on the web)."""


class ReasonRequired(WorkflowError):
    pass


def get_transition(
    source: ReviewState, target: ReviewState, kind: ReviewKind = ReviewKind.REGULAR
) -> Transition | None:
    transition = TRANSITIONS.get((ReviewState(source), ReviewState(target)))
    if transition is None or ReviewKind(kind) not in transition.kinds:
        return None
    return transition


def kind_of(review: Review) -> ReviewKind:
    return ReviewKind(review.kind or ReviewKind.REGULAR)


def actor_kinds(review: Review, actor: User | None) -> set[ActorKind]:
    """The kinds in which ``actor`` stands to ``review`` (``None`` is the portal itself)."""
    if actor is None:
        return {SYS}
    kinds: set[ActorKind] = set()
    if not actor.is_active or actor.status != AccountStatus.APPROVED:
        return kinds
    # A role never widens a relation: an expert on this review is not its coordinator.
    if (actor.has_role(Role.COORDINATOR) or actor.has_role(Role.ADMIN)) and not sits_on(
        actor, review
    ):
        kinds.add(C)
    if (
        actor.has_role(Role.APPLICANT)
        and actor.organization_id is not None
        and actor.organization_id == review.program.organization_id
        # An organization whose ИНН the center transferred to another registration: its
        # users no longer act for it.
        and review.program.organization.inn_lost_at is None
    ):
        kinds.add(P)
    return kinds


def can_advance(review: Review, target: ReviewState, actor: User | None) -> bool:
    """Whether ``actor`` may move ``review`` to ``target`` now (for buttons and routes)."""
    transition = get_transition(review.state, target, kind_of(review))
    return transition is not None and bool(transition.actors & actor_kinds(review, actor))


_advancing: ContextVar[bool] = ContextVar("advancing", default=False)


def is_advancing() -> bool:
    """True while :func:`advance` is assigning a state (the model refuses any other write)."""
    return _advancing.get()


@contextmanager
def _assigning() -> Iterator[None]:
    token = _advancing.set(True)
    try:
        yield
    finally:
        _advancing.reset(token)


def advance(
    review: Review, to: ReviewState, actor: User | None, reason: str | None = None
) -> Transition:
    """Move ``review`` to state ``to`` on behalf of ``actor`` (``None``: the portal itself).

    Raises :class:`TransitionNotAllowed` for a pair missing from the table,
    :class:`ActorNotAllowed` when the actor may not make it and :class:`ReasonRequired`
    when a reason is required and blank. On success the state, its time, the timeline
    entry and the audit record are written in the current transaction (not committed).
    """
    to = ReviewState(to)
    source = ReviewState(review.state)
    transition = get_transition(source, to, kind_of(review))
    if transition is None:
        raise TransitionNotAllowed(
            _l(
                "A review cannot go from “%(source)s” to “%(target)s”.",
                source=source.label,
                target=to.label,
            )
        )
    kinds = transition.actors & actor_kinds(review, actor)
    if not kinds:
        raise ActorNotAllowed(_l("You may not perform this action on this program."))
    reason = (reason or "").strip() or None
    if reason is None and kinds <= transition.reason_from:
        raise ReasonRequired(_l("A reason is required for this action."))

    if review.id is None:
        db.session.add(review)
        db.session.flush()
    now = utcnow()
    with _assigning():
        review.state = to
    review.state_changed_at = now
    review.add_transition(
        name=transition.name,
        from_state=source,
        to_state=to,
        actor_id=actor.id if actor is not None else None,
        reason=reason,
        occurred_at=now,
    )
    record_event(
        f"review.{transition.name}",
        actor=actor,
        object_type="review",
        object_id=review.id,
        before={"state": source.value},
        after={"state": to.value, "reason": reason},
    )
    return transition


# --- the appeal ----------------------------------------------------------------------------

A = AppealState


@dataclass(frozen=True)
class AppealTransition:
    name: str
    source: AppealState
    target: AppealState
    actors: frozenset[ActorKind]
    reason_from: frozenset[ActorKind] = frozenset()


def _a(name, source, target, actors, reason_from=()):
    return AppealTransition(name, source, target, frozenset(actors), frozenset(reason_from))


#: An appeal is filed (created in ``filed``) by the provider; the coordinator accepts it for
#: a new panel or refuses it with a reason; an accepted appeal is upheld (a new conclusion)
#: or dismissed with a reasoned answer (the decision on the appeal, a numbered document).
APPEAL_TRANSITIONS: dict[tuple[AppealState, AppealState], AppealTransition] = {
    (t.source, t.target): t
    for t in [
        _a("accept", A.FILED, A.ACCEPTED, {C}),
        _a("refuse", A.FILED, A.REFUSED, {C}, {C}),
        _a("uphold", A.ACCEPTED, A.UPHELD, {C}),
        _a("dismiss", A.ACCEPTED, A.DISMISSED, {C}, {C}),
    ]
}

#: States in which an appeal is over.
APPEAL_FINAL_STATES = frozenset({A.REFUSED, A.UPHELD, A.DISMISSED})


def appeal_actor_kinds(appeal: Appeal, actor: User | None) -> set[ActorKind]:
    """The kinds in which ``actor`` stands to ``appeal``: as to its appealed review, and
    never the coordinator of an appeal whose panel they sit on."""
    kinds = actor_kinds(appeal.review, actor)
    if C in kinds and appeal.panel_review is not None and sits_on(actor, appeal.panel_review):
        kinds.discard(C)
    return kinds


def can_advance_appeal(appeal: Appeal, target: AppealState, actor: User | None) -> bool:
    transition = APPEAL_TRANSITIONS.get((AppealState(appeal.state), AppealState(target)))
    return transition is not None and bool(transition.actors & appeal_actor_kinds(appeal, actor))


def advance_appeal(
    appeal: Appeal, to: AppealState, actor: User | None, reason: str | None = None
) -> AppealTransition:
    """Move ``appeal`` to ``to`` on behalf of ``actor``: the same checks and errors as
    :func:`advance`; the state, its time and the audit record are written (not committed)."""
    to = AppealState(to)
    source = AppealState(appeal.state)
    transition = APPEAL_TRANSITIONS.get((source, to))
    if transition is None:
        raise TransitionNotAllowed(
            _l(
                "An appeal cannot go from “%(source)s” to “%(target)s”.",
                source=source.label,
                target=to.label,
            )
        )
    kinds = transition.actors & appeal_actor_kinds(appeal, actor)
    if not kinds:
        raise ActorNotAllowed(_l("You may not perform this action on this appeal."))
    reason = (reason or "").strip() or None
    if reason is None and kinds <= transition.reason_from:
        raise ReasonRequired(_l("A reason is required for this action."))
    with _assigning():
        appeal.state = to
    appeal.state_changed_at = utcnow()
    record_event(
        f"appeal.{transition.name}",
        actor=actor,
        object_type="appeal",
        object_id=appeal.id,
        before={"state": source.value},
        after={"state": to.value, "reason": reason},
    )
    return transition
