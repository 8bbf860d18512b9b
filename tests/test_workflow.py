"""The review state machine, walked exhaustively: every pair of states, every actor kind, and
every kind of review (an appeal panel opens by a transition of its own and is never
submitted or withdrawn)."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select

from review_portal.audit.models import AuditEvent
from review_portal.enums import ReviewKind, Role
from review_portal.extensions import db
from review_portal.reviews.models import Review, ReviewTransition
from review_portal.workflow import (
    TRANSITIONS,
    ActorKind,
    ActorNotAllowed,
    ReasonRequired,
    ReviewState,
    TransitionNotAllowed,
    WorkflowError,
    advance,
    can_advance,
)
from tests.factories import (
    AdminFactory,
    ApplicantFactory,
    CoordinatorFactory,
    ExpertUserFactory,
    MunicipalViewerFactory,
    ProgramFactory,
)

ALL_PAIRS = list(itertools.product(ReviewState, ReviewState))
ALLOWED = sorted(TRANSITIONS, key=lambda pair: (pair[0].value, pair[1].value))
FORBIDDEN = [pair for pair in ALL_PAIRS if pair not in TRANSITIONS]


def review_in(state: ReviewState, kind: ReviewKind = ReviewKind.REGULAR) -> Review:
    """A review put directly into ``state`` (construction is the one write allowed)."""
    program = ProgramFactory()
    review = Review(program=program, round=2, state=state, kind=kind)
    db.session.add(review)
    db.session.flush()
    return review


def actor_of(kind: ActorKind, review: Review):
    if kind is ActorKind.SYSTEM:
        return None
    if kind is ActorKind.COORDINATOR:
        return CoordinatorFactory()
    return ApplicantFactory(organization=review.program.organization)


def pair_id(pair) -> str:
    return f"{pair[0].value}->{pair[1].value}"


def kind_for(pair) -> ReviewKind:
    """A kind of review the transition of ``pair`` exists for."""
    return sorted(TRANSITIONS[pair].kinds)[0]


#: Each transition with a kind of review it does not exist for.
OTHER_KIND = [
    (pair, kind) for pair in ALLOWED for kind in ReviewKind if kind not in TRANSITIONS[pair].kinds
]


def test_table_has_the_designed_shape():
    names = {t.name for t in TRANSITIONS.values()}
    assert names == {
        "submit",
        "screen_ok",
        "return_for_fixes",
        "edit",
        "diverge",
        "all_sheets_in",
        "resolve",
        "reopen",
        "admit",
        "require_revision",
        "reject",
        "exclude",
        "withdraw",
        "revoke",
        "open_appeal",
    }
    finals = {ReviewState.REVISION_REQUIRED, ReviewState.REJECTED, ReviewState.WITHDRAWN}
    finals.add(ReviewState.EXCLUDED)
    for (source, target), transition in TRANSITIONS.items():
        if transition.name == "revoke":
            # Only a revoked conclusion reopens a decision, for a new one.
            assert target == ReviewState.AWAITING_DECISION
            continue
        assert source not in finals, f"{source} must be final"


@pytest.mark.parametrize("pair", ALLOWED, ids=pair_id)
def test_allowed_transition_succeeds_for_each_permitted_actor(session, pair):
    source, target = pair
    transition = TRANSITIONS[pair]
    for kind in sorted(transition.actors):
        review = review_in(source, kind_for(pair))
        actor = actor_of(kind, review)
        reason = "Причина перехода" if kind in transition.reason_from else None
        advance(review, target, actor, reason=reason)
        db.session.flush()

        assert review.state == target
        row = db.session.execute(
            select(ReviewTransition).where(ReviewTransition.review_id == review.id)
        ).scalar_one()
        assert (row.name, row.from_state, row.to_state) == (transition.name, source, target)
        assert row.actor_id == (actor.id if actor else None)
        assert row.reason == reason
        event = db.session.execute(
            select(AuditEvent).where(
                AuditEvent.object_type == "review", AuditEvent.object_id == str(review.id)
            )
        ).scalar_one()
        assert event.action == f"review.{transition.name}"
        assert event.before == {"state": source.value}
        assert event.after == {"state": target.value, "reason": reason}
        assert event.actor_id == (actor.id if actor else None)


@pytest.mark.parametrize("pair", ALLOWED, ids=pair_id)
def test_allowed_transition_refuses_other_actors(session, pair):
    source, target = pair
    transition = TRANSITIONS[pair]
    review = review_in(source, kind_for(pair))
    others = {
        "system": None,
        "coordinator": CoordinatorFactory(),
        "provider": ApplicantFactory(organization=review.program.organization),
    }
    strangers = [
        ApplicantFactory(),  # an applicant of another organization
        ExpertUserFactory(),
        MunicipalViewerFactory(),
        CoordinatorFactory(status="pending"),  # not approved yet
    ]
    candidates = [actor for kind, actor in others.items() if kind not in transition.actors]
    for actor in candidates + strangers:
        with pytest.raises(ActorNotAllowed):
            advance(review, target, actor, reason="Причина")
        assert review.state == source
        assert not can_advance(review, target, actor)
    assert db.session.execute(select(ReviewTransition)).first() is None


@pytest.mark.parametrize("pair", [p for p in ALLOWED if TRANSITIONS[p].reason_from], ids=pair_id)
@pytest.mark.parametrize("blank", [None, "", "   "])
def test_transition_requiring_reason_refuses_blank(session, pair, blank):
    source, target = pair
    review = review_in(source, kind_for(pair))
    kind = sorted(TRANSITIONS[pair].reason_from)[0]
    with pytest.raises(ReasonRequired):
        advance(review, target, actor_of(kind, review), reason=blank)
    assert review.state == source
    assert db.session.execute(select(AuditEvent)).first() is None


@pytest.mark.parametrize("pair", FORBIDDEN, ids=pair_id)
def test_forbidden_pair_raises_for_everyone(session, pair):
    source, target = pair
    review = review_in(source)
    for actor in (None, CoordinatorFactory(), AdminFactory(), actor_of(ActorKind.PROVIDER, review)):
        with pytest.raises(TransitionNotAllowed) as error:
            advance(review, target, actor, reason="Причина")
        assert source.value in str(error.value) or str(source.label) in str(error.value)
        assert review.state == source
    assert db.session.execute(select(ReviewTransition)).first() is None


@pytest.mark.parametrize("pair_kind", OTHER_KIND, ids=lambda p: f"{pair_id(p[0])}:{p[1].value}")
def test_transition_does_not_exist_for_other_kinds_of_review(session, pair_kind):
    """A regular review is never opened as an appeal panel; a panel is never submitted or
    withdrawn (its appeal ends it)."""
    (source, target), kind = pair_kind
    review = review_in(source, kind)
    for actor in (None, CoordinatorFactory(), actor_of(ActorKind.PROVIDER, review)):
        with pytest.raises(TransitionNotAllowed):
            advance(review, target, actor, reason="Причина")
        assert not can_advance(review, target, actor)
    assert review.state == source
    assert db.session.execute(select(ReviewTransition)).first() is None


def test_admin_acts_as_coordinator(session):
    review = review_in(ReviewState.SUBMITTED)
    advance(review, ReviewState.IN_REVIEW, AdminFactory())
    assert review.state == ReviewState.IN_REVIEW


def test_applicant_of_owning_organization_needs_the_applicant_role(session):
    review = review_in(ReviewState.DRAFT)
    colleague = ExpertUserFactory(organization=review.program.organization)
    assert colleague.has_role(Role.EXPERT) and not colleague.has_role(Role.APPLICANT)
    with pytest.raises(ActorNotAllowed):
        advance(review, ReviewState.SUBMITTED, colleague)


def test_direct_state_assignment_is_refused(session):
    review = review_in(ReviewState.DRAFT)
    with pytest.raises(WorkflowError):
        review.state = ReviewState.ADMITTED
    assert review.state == ReviewState.DRAFT


def test_walk_through_a_whole_review(session):
    """draft → submitted → in_review → reconciliation → awaiting_decision → admitted → excluded."""
    program = ProgramFactory()
    review = program.current_review
    provider = ApplicantFactory(organization=program.organization)
    coordinator = CoordinatorFactory()
    advance(review, ReviewState.SUBMITTED, provider)
    advance(review, ReviewState.IN_REVIEW, coordinator)
    advance(review, ReviewState.RECONCILIATION, None)
    advance(review, ReviewState.AWAITING_DECISION, coordinator, reason="Обоснование")
    advance(review, ReviewState.ADMITTED, coordinator)
    advance(review, ReviewState.EXCLUDED, coordinator, reason="Программа не реализуется")
    db.session.flush()
    assert program.state == ReviewState.EXCLUDED
    assert [t.name for t in review.transitions] == [
        "submit",
        "screen_ok",
        "diverge",
        "resolve",
        "admit",
        "exclude",
    ]
    assert all(t.occurred_at is not None for t in review.transitions)
    assert review.state_changed_at == review.transitions[-1].occurred_at
