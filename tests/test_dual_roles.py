"""A coordinator who is also an expert on a review is, for that review, an expert and
nothing more — on every path: the sheet page and its JSON, the review's experts page, the
decision page, the bulk confirmation (its answer names the refused review and why), the
bulk issuing job and the services themselves. On the reviews they do not sit on they keep
the staff's rights, and once their own sheet is in they may read the others'.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from review_portal.conclusions.bulk import start_bulk_issue
from review_portal.conclusions.models import Conclusion
from review_portal.enums import AssignmentStatus, Role
from review_portal.errors import Forbidden
from review_portal.extensions import db
from review_portal.jobs.services import run_job
from review_portal.reviews.services import decide_review
from review_portal.workflow import ActorNotAllowed, ReviewState, advance
from tests import factories
from tests.factories import with_total


def coordinator_expert():
    """An approved expert (technical direction) who is a coordinator as well."""
    user = factories.expert()
    user.add_role(Role.COORDINATOR)
    db.session.flush()
    return user


def conclusions_of(review) -> list[Conclusion]:
    return list(
        db.session.execute(select(Conclusion).where(Conclusion.review_id == review.id)).scalars()
    )


def test_co_experts_sheet_is_closed_while_own_sheet_is_a_draft(client, auth, session):
    dual = coordinator_expert()
    review = factories.program_in_review().current_review
    own = factories.add_assignment(review, dual, 1)
    colleague = factories.expert(full_name="Соэксперт Скрытый Иванович")
    theirs = factories.add_assignment(review, colleague, 2)
    factories.submit_scores(theirs, with_total(15), recommendations="Секретные рекомендации.")
    factories.save_scores(own, with_total(14))
    auth.login(dual)

    page = client.get(f"/sheets/{theirs.id}")
    assert page.status_code == 403
    assert "Секретные рекомендации" not in page.get_data(as_text=True)
    as_json = client.get(f"/sheets/{theirs.id}", headers={"Accept": "application/json"})
    assert as_json.status_code == 403
    assert as_json.get_json()["error"]
    experts_page = client.get(f"/reviews/{review.id}/experts")
    assert experts_page.status_code == 403
    assert "Скрытый" not in experts_page.get_data(as_text=True)
    # The own sheet stays theirs to fill in.
    assert client.get(f"/sheets/{own.id}").status_code == 200

    # Once their own sheet is in, the staff's reading applies again.
    factories.submit_scores(own, with_total(14))
    page = client.get(f"/sheets/{theirs.id}")
    assert page.status_code == 200
    assert "Секретные рекомендации" in page.get_data(as_text=True)
    # Staff actions on the review stay closed at any time.
    assert client.get(f"/reviews/{review.id}/experts").status_code == 403


def test_staff_rights_stay_on_the_reviews_the_coordinator_does_not_sit_on(client, auth, session):
    dual = coordinator_expert()
    seated = factories.program_in_review().current_review
    factories.add_assignment(seated, dual, 1)
    other, (first, _) = factories.scored_review(with_total(16), with_total(15))
    auth.login(dual)

    assert client.get(f"/sheets/{first.id}").status_code == 200
    assert client.get(f"/reviews/{other.id}/decision").status_code == 200
    response = auth.post(f"/reviews/{other.id}/decision", {"decision": "admitted"})
    assert response.status_code == 302
    db.session.refresh(other)
    assert other.state == ReviewState.ADMITTED
    assert other.decided_by_id == dual.id


def test_review_cannot_be_decided_by_its_own_expert_on_any_path(client, auth, session):
    own, (mine, _) = factories.scored_review(with_total(16), with_total(15))
    dual = mine.expert
    dual.add_role(Role.COORDINATOR)
    other, _ = factories.scored_review(with_total(17), with_total(16))
    db.session.flush()

    # The service, and the state machine below it.
    with pytest.raises(Forbidden, match="эксперт этой экспертизы"):
        decide_review(own, dual, own.computed_decision)
    with pytest.raises(ActorNotAllowed):
        advance(own, ReviewState.ADMITTED, dual)
    savepoint = db.session.begin_nested()
    job, refused = start_bulk_issue([own.id, other.id], dual)
    assert [(item.review.id, item.reason) for item in refused] == [
        (own.id, "вы один из её экспертов и не можете принимать по ней решение")
    ]
    assert job.payload["review_ids"] == [other.id]
    savepoint.rollback()

    # The pages: one by one, and the bulk confirmation.
    auth.login(dual)
    assert client.get(f"/reviews/{own.id}/decision").status_code == 200  # read-only
    response = auth.post(f"/reviews/{own.id}/decision", {"decision": "admitted"})
    assert response.status_code == 403
    response = auth.post(
        "/decisions/confirm", {"review_ids": [str(own.id), str(other.id)]}, follow_redirects=True
    )
    text = response.get_data(as_text=True)
    assert f"«{own.program.title}»: вы один из её экспертов" in text
    db.session.expire_all()
    assert own.state == ReviewState.AWAITING_DECISION
    assert own.decided_by_id is None
    assert conclusions_of(own) == []
    assert other.state == ReviewState.ADMITTED
    assert len(conclusions_of(other)) == 1


def test_bulk_job_rechecks_each_review_for_its_actor(app, session):
    coordinator = factories.CoordinatorFactory()
    review, _ = factories.scored_review(with_total(16), with_total(15))
    plain, _ = factories.scored_review(with_total(17), with_total(16))
    job, refused = start_bulk_issue([review.id, plain.id], coordinator)
    assert refused == []
    # Between the confirmation and the job the coordinator takes a seat on the review.
    coordinator.add_role(Role.EXPERT)
    factories.add_assignment(review, coordinator, 3, status=AssignmentStatus.OFFERED)
    db.session.commit()

    job = run_job(job.id)

    assert job.failed_items == [
        {
            "review_id": review.id,
            "title": review.program.title,
            "error": "вы один из её экспертов и не можете принимать по ней решение",
        }
    ]
    db.session.expire_all()
    assert review.state == ReviewState.AWAITING_DECISION
    assert conclusions_of(review) == []
    assert plain.state == ReviewState.ADMITTED


def test_suspension_leaves_the_offers_on_the_coordinators_own_review(client, auth, session):
    dual = coordinator_expert()
    own = factories.program_in_review().current_review
    factories.add_assignment(own, dual, 1)
    other = factories.program_in_review().current_review
    colleague = factories.expert(full_name="Отстраняемый Эксперт")
    on_own = factories.add_assignment(own, colleague, 2, status=AssignmentStatus.OFFERED)
    elsewhere = factories.add_assignment(other, colleague, 1, status=AssignmentStatus.OFFERED)
    auth.login(dual)

    response = auth.post(
        f"/experts/{colleague.id}/suspend", {"reason": "Нарушение сроков"}, follow_redirects=True
    )

    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert f"оставлены для отзыва другому координатору: «{own.program.title}»" in text
    db.session.expire_all()
    assert colleague.expert_profile.suspended
    # Withdrawn where the coordinator is staff; left alone on the review they sit on.
    assert elsewhere.status == AssignmentStatus.WITHDRAWN
    assert on_own.status == AssignmentStatus.OFFERED
