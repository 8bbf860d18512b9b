"""Reconciliation and decision end to end through the services: the divergence check when the
last sheet is in, each resolution path (third expert, discussion then agreement, discussion
then third expert, coordinator resolution), the decision with and without override, reopening
and the deadline command."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from review_portal.assignment.models import Assignment
from review_portal.assignment.services import assign_manually, decline_assignment
from review_portal.audit.models import AuditEvent
from review_portal.enums import (
    AssignmentRole,
    AssignmentStatus,
    Decision,
    Resolution,
    RevisionKind,
)
from review_portal.reconciliation import services
from review_portal.reconciliation.services import ScoreChange
from review_portal.reviews import services as review_services
from review_portal.scoring.models import ScoreRevision
from review_portal.scoring.services import reopen_sheet
from review_portal.workflow import ReviewState
from tests import factories
from tests.factories import points, with_total

S = ReviewState


def events(session, action, object_id=None):
    stmt = select(AuditEvent).where(AuditEvent.action == action)
    if object_id is not None:
        stmt = stmt.where(AuditEvent.object_id == str(object_id))
    return session.execute(stmt.order_by(AuditEvent.id)).scalars().all()


# --- the check when all sheets are in --------------------------------------------------


def test_first_sheet_alone_changes_nothing(session):
    review, (first, second) = factories.scored_review(with_total(18), with_total(10), submit=False)
    factories.submit_scores(first, with_total(18))
    assert review.state == S.IN_REVIEW
    assert review.divergent is None and review.final_result is None


def test_agreeing_sheets_go_to_decision_with_final_result(session):
    review, assignments = factories.scored_review(with_total(16), with_total(15))
    assert review.state == S.AWAITING_DECISION
    assert review.divergent is False and review.divergence_rules == []
    assert review.final_result["total"] == "15.50"
    assert review.final_result["percent"] == "77.50"
    assert review.final_result["counted"] == [1, 2]
    assert review.final_result["counted_assignments"] == [a.id for a in assignments]
    assert review.computed_decision == Decision.ADMITTED
    assert review.resolution is None
    check = events(session, "review.divergence_check", review.id)[-1]
    assert check.after["divergent"] is False


def test_divergent_sheets_store_the_rules_that_fired(session):
    review, _ = factories.scored_review(points(2), points(1, 1, 1, 1, 2))  # 20 vs 16
    assert review.state == S.RECONCILIATION
    assert review.divergent is True
    assert review.divergence_rules == [
        {"rule": "total_percent", "difference": "4", "limit": "4", "percent": "20"}
    ]
    assert events(session, "review.divergence_check", review.id)[-1].after["divergent"] is True


# --- third expert ----------------------------------------------------------------------


def test_third_expert_path_end_to_end(session):
    program = factories.program_in_review()
    same_town = factories.expert(municipality=program.municipality, full_name="Местный")
    third_user = factories.expert(full_name="Третий Эксперт")
    review, (first, second) = factories.scored_review(
        with_total(18), with_total(10), program=program
    )
    assert review.state == S.RECONCILIATION
    assert review.extra_experts == 1
    third = session.execute(
        select(Assignment).where(
            Assignment.review_id == review.id, Assignment.role == AssignmentRole.THIRD
        )
    ).scalar_one()
    # The same eligibility as any assignment: never the program's own municipality.
    assert third.expert_id == third_user.id != same_town.id
    assert third.status == AssignmentStatus.OFFERED
    assert events(session, "review.third_expert_requested", review.id)

    from review_portal.assignment.services import accept_assignment

    accept_assignment(third, third_user)
    factories.submit_scores(third, with_total(12))
    assert review.state == S.AWAITING_DECISION
    assert review.resolution == Resolution.THIRD_EXPERT
    # 18, 10, 12: the closest pair is 10 and 12 (experts 2 and 3), mean 11 → revision.
    assert review.final_result["counted"] == [2, 3]
    assert review.final_result["counted_assignments"] == [second.id, third.id]
    assert review.final_result["total"] == "11.00"
    assert review.computed_decision == Decision.REVISION_REQUIRED

    review_services.decide_review(
        review, factories.CoordinatorFactory(), Decision.REVISION_REQUIRED
    )
    assert review.state == S.REVISION_REQUIRED
    assert review.decision == Decision.REVISION_REQUIRED
    assert review.override_reason is None


def test_third_expert_with_equal_distances_takes_the_higher_pair(session):
    third_user = factories.expert()
    review, _ = factories.scored_review(with_total(10), with_total(14))
    third = next(a for a in review.assignments if a.expert_id == third_user.id)
    third.status = AssignmentStatus.ACCEPTED
    factories.submit_scores(third, with_total(12))
    assert review.final_result["counted"] == [2, 3]  # 14 and 12, mean 13
    assert review.final_result["tie_broken"] is True
    assert review.final_result["total"] == "13.00"


def test_third_expert_waits_when_none_is_eligible_then_manual(session):
    coordinator = factories.CoordinatorFactory()
    review, _ = factories.scored_review(with_total(18), with_total(10))
    assert review.state == S.RECONCILIATION and review.extra_experts == 1
    assert [a.role for a in review.assignments] == [AssignmentRole.INITIAL] * 2
    late = factories.expert(full_name="Поздний Эксперт")
    assignment = assign_manually(review, late, coordinator)
    assert assignment.role == AssignmentRole.THIRD
    assert assignment.seat == 3


def test_a_declining_third_expert_is_replaced_by_another_third(session):
    first_choice = factories.expert()
    review, _ = factories.scored_review(with_total(18), with_total(10))
    offer = next(a for a in review.assignments if a.expert_id == first_choice.id)
    replacement_user = factories.expert()
    replacements = decline_assignment(offer, first_choice, "Конфликт интересов", conflict=True)
    assert [a.expert_id for a in replacements] == [replacement_user.id]
    assert replacements[0].role == AssignmentRole.THIRD
    assert review.state == S.RECONCILIATION


# --- discussion ------------------------------------------------------------------------


def _change(value, reason="Согласен с коллегой после обсуждения.", comment=None):
    return ScoreChange(value=value, comment=comment or "Исправлено.", reason=reason)


def test_discussion_then_agreement(session, discussion_rubric):
    review, (first, second) = factories.scored_review(
        points(2, 2, 2, 2, 2, 2, 2, 2, 0, 2),
        points(2),  # D2 0 against 2: flagged
    )
    assert review.rubric_id == "dop-discussion"
    assert review.state == S.RECONCILIATION
    assert review.discussion_deadline is not None
    assert review.extra_experts == 0
    assert services.current_divergence(review).flagged == ("D2",)

    settled = services.revise_scores(first, first.expert, {"D2": _change(1)})
    assert settled is True
    assert review.state == S.AWAITING_DECISION
    assert review.resolution == Resolution.AGREEMENT
    assert review.final_result["scores"]["D2"] == "1.50"
    revision = session.execute(select(ScoreRevision)).scalar_one()
    assert (revision.kind, revision.criterion_id, revision.old_value, revision.new_value) == (
        RevisionKind.DISCUSSION,
        "D2",
        0,
        1,
    )
    assert revision.reason == "Согласен с коллегой после обсуждения."
    assert events(session, "sheet.revise")


def test_every_discussion_revision_is_kept(session, discussion_rubric):
    review, (first, second) = factories.scored_review(points(2, 2, 0, 0, 0), points(2))
    services.revise_scores(first, first.expert, {"B1": _change(1, "Первая правка.")})
    services.revise_scores(first, first.expert, {"B1": _change(2, "Вторая правка.")})
    history = session.execute(select(ScoreRevision).order_by(ScoreRevision.id)).scalars().all()
    assert [(r.old_value, r.new_value, r.reason) for r in history] == [
        (0, 1, "Первая правка."),
        (1, 2, "Вторая правка."),
    ]
    assert review.state == S.RECONCILIATION  # B2, B3 still 0 against 2


def test_revision_without_reason_is_refused_and_changes_nothing(session, discussion_rubric):
    review, (first, _) = factories.scored_review(points(2, 2, 2, 2, 2, 2, 2, 2, 0, 2), points(2))
    with pytest.raises(services.RevisionInvalid) as refused:
        services.revise_scores(first, first.expert, {"D2": _change(2, reason="  ")})
    assert set(refused.value.errors) == {"D2"}
    session.refresh(first.sheet)
    assert {s.criterion_id: s.value for s in first.sheet.scores}["D2"] == 0
    assert session.execute(select(func.count(ScoreRevision.id))).scalar_one() == 0
    with pytest.raises(services.ReconciliationError):
        services.revise_scores(
            first, first.expert, {"D2": _change(0, comment="Замечание по критерию D2.")}
        )


def test_discussion_then_third_expert_at_the_deadline(session, discussion_rubric):
    review, (first, _) = factories.scored_review(points(2, 2, 2, 2, 2, 2, 2, 2, 0, 2), points(2))
    third_user = factories.expert()
    assert services.close_expired_discussions(review.discussion_deadline) == []
    handled = services.close_expired_discussions(review.discussion_deadline + timedelta(seconds=1))
    assert handled == [review]
    assert review.extra_experts == 1
    third = next(a for a in review.assignments if a.role == AssignmentRole.THIRD)
    assert third.expert_id == third_user.id
    # The discussion is over: no more revisions.
    with pytest.raises(services.ReconciliationError):
        services.revise_scores(first, first.expert, {"D2": _change(2)})
    third.status = AssignmentStatus.ACCEPTED
    factories.submit_scores(third, points(2))
    assert review.state == S.AWAITING_DECISION
    assert review.resolution == Resolution.THIRD_EXPERT
    assert review.final_result["counted"] == [2, 3]  # 20 and 20


# --- the coordinator -------------------------------------------------------------------


def test_coordinator_resolution_needs_a_justification(session):
    coordinator = factories.CoordinatorFactory()
    review, (first, second) = factories.scored_review(with_total(18), with_total(10))
    with pytest.raises(services.ReconciliationError):
        services.resolve_review(review, coordinator, "   ", [first.id, second.id])
    assert review.state == S.RECONCILIATION
    with pytest.raises(services.ReconciliationError):
        services.resolve_review(review, coordinator, "Обоснование.", [])


def test_coordinator_resolution_counts_the_chosen_sheets(session):
    coordinator = factories.CoordinatorFactory()
    third_user = factories.expert()
    review, (first, second) = factories.scored_review(with_total(18), with_total(10))
    offer = next(a for a in review.assignments if a.expert_id == third_user.id)
    services.resolve_review(review, coordinator, "Второй эксперт не учёл учебный план.", [first.id])
    assert review.state == S.AWAITING_DECISION
    assert review.resolution == Resolution.COORDINATOR
    assert review.resolution_note == "Второй эксперт не учёл учебный план."
    assert review.resolved_by_id == coordinator.id
    assert review.final_result["counted"] == [1]
    assert review.final_result["total"] == "18.00"
    assert review.computed_decision == Decision.ADMITTED
    # The open third-expert offer is no longer needed.
    assert offer.status == AssignmentStatus.WITHDRAWN
    assert review.transitions[-1].reason == "Второй эксперт не учёл учебный план."


def test_override_without_justification_is_refused(session):
    coordinator = factories.CoordinatorFactory()
    review, _ = factories.scored_review(with_total(16), with_total(15))
    with pytest.raises(review_services.ReviewError):
        review_services.decide_review(review, coordinator, Decision.REJECTED, "  ")
    assert review.state == S.AWAITING_DECISION
    assert review.decision is None


def test_override_with_justification_is_stored_and_audited(session):
    coordinator = factories.CoordinatorFactory()
    review, _ = factories.scored_review(with_total(16), with_total(15))
    review_services.decide_review(
        review, coordinator, Decision.REVISION_REQUIRED, "Учебный план не согласован по часам."
    )
    assert review.state == S.REVISION_REQUIRED
    assert review.decision == Decision.REVISION_REQUIRED
    assert review.computed_decision == Decision.ADMITTED
    assert review.override_reason == "Учебный план не согласован по часам."
    assert review.decided_by_id == coordinator.id
    event = events(session, "review.decide", review.id)[-1]
    assert event.after["override"] is True
    assert event.after["justification"] == "Учебный план не согласован по часам."
    assert event.before["computed_decision"] == "admitted"


def test_confirming_the_computed_decision_needs_no_justification(session):
    review, _ = factories.scored_review(with_total(9), with_total(8))
    review_services.decide_review(review, factories.CoordinatorFactory(), review.computed_decision)
    assert review.state == S.REJECTED
    assert review.override_reason is None


def test_confirm_many_takes_only_non_divergent_reviews_awaiting_decision(session):
    from review_portal.conclusions.bulk import start_bulk_issue

    coordinator = factories.CoordinatorFactory()
    plain, _ = factories.scored_review(with_total(16), with_total(15))
    other, _ = factories.scored_review(with_total(11), with_total(11))
    divergent, (first, _) = factories.scored_review(with_total(18), with_total(10))
    services.resolve_review(divergent, coordinator, "Решение координатора.", [first.id])
    done, _ = factories.scored_review(with_total(16), with_total(16))
    review_services.decide_review(done, coordinator, Decision.ADMITTED)
    job, skipped = start_bulk_issue([plain.id, other.id, divergent.id, done.id], coordinator)
    assert job.payload["review_ids"] == [plain.id, other.id]
    assert {item.review.id for item in skipped} == {divergent.id, done.id}
    # Nothing is decided before the job runs.
    assert (plain.state, other.state) == (S.AWAITING_DECISION, S.AWAITING_DECISION)


def test_decision_tells_the_provider(session):
    from review_portal.notifications.models import Notification

    review, _ = factories.scored_review(with_total(16), with_total(15))
    provider = factories.ApplicantFactory(organization=review.program.organization)
    review_services.decide_review(review, factories.CoordinatorFactory(), Decision.ADMITTED)
    texts = (
        session.execute(select(Notification.text).where(Notification.user_id == provider.id))
        .scalars()
        .all()
    )
    assert any(review.program.title in text for text in texts)


# --- reopening -------------------------------------------------------------------------


def test_reopening_a_sheet_sends_the_review_back_and_resubmitting_settles_again(session):
    coordinator = factories.CoordinatorFactory()
    review, (first, second) = factories.scored_review(with_total(16), with_total(15))
    reopen_sheet(second.sheet, coordinator, "Эксперт просит исправить опечатку.")
    assert review.state == S.IN_REVIEW
    assert review.final_result is None and review.computed_decision is None
    factories.submit_scores(second, with_total(10))
    assert review.state == S.RECONCILIATION  # 16 against 10 now diverges


def test_reopened_sheet_resubmitted_with_a_third_expert_already_in(session):
    coordinator = factories.CoordinatorFactory()
    third_user = factories.expert()
    review, (first, second) = factories.scored_review(with_total(18), with_total(10))
    third = next(a for a in review.assignments if a.expert_id == third_user.id)
    third.status = AssignmentStatus.ACCEPTED
    factories.submit_scores(third, with_total(17))
    assert review.state == S.AWAITING_DECISION
    reopen_sheet(second.sheet, coordinator, "Пересмотр.")
    factories.submit_scores(second, with_total(11))
    # Still divergent; the third expert's sheet is in, so the review settles at once.
    assert review.state == S.AWAITING_DECISION
    assert review.final_result["counted"] == [1, 3]
    assert review.final_result["total"] == "17.50"


# --- the command -----------------------------------------------------------------------


def test_close_discussions_command(app, session, discussion_rubric):
    review, _ = factories.scored_review(points(2, 2, 2, 2, 2, 2, 2, 2, 0, 2), points(2))
    session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["close-discussions"])
    assert result.exit_code == 0, result.output
    assert review.extra_experts == 0
    from review_portal.reviews.models import Review

    session.execute(
        Review.__table__.update()
        .where(Review.id == review.id)
        .values(discussion_deadline=review.discussion_deadline - timedelta(days=30))
    )
    session.commit()
    result = runner.invoke(args=["close-discussions"])
    assert result.exit_code == 0, result.output
    assert "1" in result.output
    session.expire_all()
    assert session.get(Review, review.id).extra_experts == 1


def test_final_scores_are_decimal_strings(session):
    review, _ = factories.scored_review(points(2, 1, 2), points(2))
    assert Decimal(review.final_result["scores"]["A2"]) == Decimal("1.5")


# --- found in review ---------------------------------------------------------------------


def test_a_decided_review_refuses_to_reopen_its_sheets(session):
    from review_portal.scoring.services import SheetError

    coordinator = factories.CoordinatorFactory()
    review, (first, _) = factories.scored_review(with_total(16), with_total(15))
    review_services.decide_review(review, coordinator, Decision.ADMITTED)
    with pytest.raises(SheetError):
        reopen_sheet(first.sheet, coordinator, "Пересмотр.")
    assert first.sheet.status.value == "submitted"
    assert review.state == S.ADMITTED


def test_reopen_after_a_coordinator_resolution_settles_again(session):
    coordinator = factories.CoordinatorFactory()
    third_user = factories.expert()
    review, (first, second) = factories.scored_review(with_total(18), with_total(10))
    offer = next(a for a in review.assignments if a.expert_id == third_user.id)
    services.resolve_review(review, coordinator, "Учтён только первый лист.", [first.id])
    assert offer.status == AssignmentStatus.WITHDRAWN
    reopen_sheet(second.sheet, coordinator, "Эксперт пересмотрит оценки.")
    assert review.extra_experts == 0  # the withdrawn request is dropped
    factories.submit_scores(second, with_total(17))
    assert review.state == S.AWAITING_DECISION  # 18 and 17 agree now


def test_a_coordinator_sitting_on_a_review_cannot_read_or_settle_it(session):
    from review_portal.enums import Role
    from review_portal.reconciliation.permissions import (
        can_decide,
        can_resolve,
        can_view_reconciliation,
    )

    review, _ = factories.scored_review(with_total(18), with_total(10))
    both = factories.expert(full_name="Координатор-Эксперт")
    both.add_role(Role.COORDINATOR)
    session.flush()
    assert both.has_role(Role.COORDINATOR)
    third = assign_manually(review, both, factories.CoordinatorFactory())
    assert not can_view_reconciliation(both, review)
    assert not can_resolve(both, review)
    third.status = AssignmentStatus.ACCEPTED
    factories.submit_scores(third, with_total(12))
    assert review.state == S.AWAITING_DECISION
    assert can_view_reconciliation(both, review)  # submitted: may read now
    assert not can_decide(both, review)  # but never decides a review they scored
