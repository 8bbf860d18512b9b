"""The coordinator's reconciliation and decision pages: the lists (and their fixed number of
queries), the side-by-side page, resolving a reconciliation directly, deciding one review
(confirmed or overridden with a justification) and confirming many at once."""

from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from review_portal.assignment.models import Assignment
from review_portal.audit.models import AuditEvent
from review_portal.db import utcnow
from review_portal.enums import (
    AssignmentRole,
    AssignmentStatus,
    Decision,
    Direction,
    Resolution,
)
from review_portal.extensions import db
from review_portal.reconciliation import services
from review_portal.reviews import services as review_services
from review_portal.reviews.models import Review
from review_portal.workflow import ReviewState
from tests import factories


@pytest.fixture(autouse=True)
def _english(english):
    pass


@pytest.fixture
def coordinator(session):
    return factories.CoordinatorFactory(full_name="Координатор Тестовый")


def divergent(**program_fields):
    """A review whose two experts scored 18 and 10 of 20: it is in reconciliation."""
    review, assignments = factories.scored_review(
        factories.with_total(18), factories.with_total(10), **program_fields
    )
    assert review.state == ReviewState.RECONCILIATION
    return review, assignments


def agreed(**program_fields):
    """A review whose experts scored 16 and 15: not divergent, awaiting the decision
    (77.5 %, admitted)."""
    review, assignments = factories.scored_review(
        factories.with_total(16), factories.with_total(15), **program_fields
    )
    assert review.state == ReviewState.AWAITING_DECISION
    return review, assignments


def third_assignment(review) -> Assignment | None:
    return db.session.execute(
        select(Assignment).where(
            Assignment.review_id == review.id, Assignment.role == AssignmentRole.THIRD
        )
    ).scalar_one_or_none()


def part(page: str, element_id: str, end: str = "</tr>") -> str:
    """The HTML from the element with ``element_id`` to the next ``end``."""
    return page.split(f'id="{element_id}"', 1)[1].split(end, 1)[0]


def opening(page: str, element_id: str) -> str:
    """The rest of the opening tag of the element with ``element_id`` (its other attributes)."""
    return page.split(f'id="{element_id}"', 1)[1].split(">", 1)[0]


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def fresh(review) -> Review:
    db.session.expire_all()
    return db.session.get(Review, review.id)


# --- the list of reconciliations ------------------------------------------------------------


def test_reconciliation_list_shows_the_path_of_each_review(client, auth, session, coordinator):
    # No other expert exists yet: the first review waits for a third expert.
    waiting, _ = divergent(title="Ожидает третьего эксперта")
    # Its experts are eligible for the next one, which gets a third expert at once.
    assigned, _ = divergent(title="Третий эксперт назначен")
    # No expert of arts exists: no third expert for this one either; it shows how a review
    # in a discussion (the rubric's other resolution) looks.
    discussing, _ = divergent(title="Обсуждение экспертов", direction=Direction.ARTS)
    discussing.extra_experts = 0
    discussing.discussion_deadline = utcnow() + timedelta(days=3)
    session.commit()
    assert third_assignment(waiting) is None
    assert third_assignment(assigned).status == AssignmentStatus.OFFERED

    auth.login(coordinator)
    page = client.get("/reconciliations").get_data(as_text=True)

    row = part(page, f"review-{waiting.id}")
    assert "table-warning" in opening(page, f"review-{waiting.id}")
    assert "Third expert requested; no eligible expert found yet." in row
    assert f'href="/reviews/{waiting.id}/experts"' in row
    assert f'href="/reviews/{waiting.id}/reconciliation"' in row
    assert "Ожидает третьего эксперта" in row
    assert "The totals differ by 8 points, at least 20% of the maximum (4 points)." in row
    assert "Scores differ by 2 or more on: B4, C1, D1, D2." in row

    row = part(page, f"review-{assigned.id}")
    assert "Third expert assigned (offered" in row
    assert "table-warning" not in opening(page, f"review-{assigned.id}")

    row = part(page, f"review-{discussing.id}")
    assert "Discussion between the experts until" in row


def test_reconciliation_list_is_empty_without_reviews(client, auth, coordinator):
    auth.login(coordinator)
    page = client.get("/reconciliations").get_data(as_text=True)
    assert 'id="no-reviews"' in page


# --- the side-by-side page ------------------------------------------------------------------


def test_side_by_side_page_shows_experts_flagged_criteria_and_totals(client, auth, coordinator):
    review, assignments = divergent()
    auth.login(coordinator)
    response = client.get(f"/reviews/{review.id}/reconciliation")
    assert response.status_code == 200
    page = response.get_data(as_text=True)

    header = part(page, "side-by-side", "</thead>")
    assert "Expert 1" in header and "Expert 2" in header
    # The staff may see who the experts are, in small print.
    assert assignments[0].expert.full_name in part(page, "expert-1", "</th>")
    assert assignments[1].expert.full_name in part(page, "expert-2", "</th>")

    # 18 and 10: with_total scores criteria in order, so B4, C1, D1 and D2 are 2 against 0.
    for criterion in ("B4", "C1", "D1", "D2"):
        assert "flagged" in opening(page, f"criterion-{criterion}")
        assert "divergent" in part(page, f"criterion-{criterion}")
    for criterion in ("A1", "B1", "D3"):
        assert "flag-marker" not in part(page, f"criterion-{criterion}")
    # Each cell: the score and the comment.
    cell = part(page, "criterion-B4").split('data-expert="2"', 1)[1].split("</td>", 1)[0]
    assert ">0<" in cell and "Замечание по критерию B4." in cell

    totals = text_of(part(page, "totals"))
    assert "18 of 20 points (90 %)" in totals
    assert "10 of 20 points (50 %)" in totals

    fired = text_of(part(page, "fired-rules", "</ul>"))
    assert "The totals differ by 8 points" in fired
    assert "different decisions" in fired
    assert "The initial sheets as they are now:" in page
    # The sheets are as they were: the reasons are printed once, then "the same reasons".
    assert page.count("The totals differ by 8 points") == 1
    assert "They still diverge for the same reasons." in part(page, "current-divergence", "</div>")
    assert 'id="resolve-form"' in page
    assert "Under expert review → Reconciliation" in text_of(part(page, "timeline", "</table>"))


def test_side_by_side_page_shows_the_final_result_and_revisions(client, auth, coordinator):
    from review_portal.enums import RevisionKind
    from review_portal.scoring.models import ScoreRevision

    review, assignments = divergent()
    sheet = assignments[1].sheet
    sheet.revisions.append(
        ScoreRevision(
            criterion_id="B4",
            kind=RevisionKind.DISCUSSION,
            old_value=0,
            new_value=1,
            old_comment="Было плохо.",
            new_comment="Стало лучше.",
            reason="Перечитал раздел результатов.",
        )
    )
    services.resolve_review(review, coordinator, "Эксперт 2 недооценил.", [assignments[0].id])
    db.session.commit()

    auth.login(coordinator)
    page = client.get(f"/reviews/{review.id}/reconciliation").get_data(as_text=True)
    final = text_of(part(page, "final-result", "</section>"))
    assert "Expert 1" in text_of(part(page, "counted", "</dd>"))
    assert "Expert 2" not in text_of(part(page, "counted", "</dd>"))
    assert "18 of 20 points (90 %)" in final
    assert str(Decision.ADMITTED.label) in final
    assert "The final score of a criterion is the mean of all counted sheets." in final
    assert "Эксперт 2 недооценил." in final
    assert "18 of 20 points (90 %)" in text_of(part(page, "final-total", "</td>"))
    revisions = text_of(part(page, "revisions", "</table>"))
    assert "Expert 2" in revisions
    assert "0 — не выражен → 1 — выражен частично" in revisions
    assert "Было плохо." in revisions and "Стало лучше." in revisions
    assert "Перечитал раздел результатов." in revisions
    # Resolved: no form any more.
    assert 'id="resolve-form"' not in page


def test_side_by_side_page_is_refused_before_the_sheets_are_checked(client, auth, coordinator):
    review, _ = factories.scored_review(
        factories.with_total(18), factories.with_total(10), submit=False
    )
    auth.login(coordinator)
    assert client.get(f"/reviews/{review.id}/reconciliation").status_code == 403
    assert client.get(f"/reviews/{review.id}/decision").status_code == 403
    assert client.get("/reviews/999999/reconciliation").status_code == 404


@pytest.mark.parametrize(
    "make_user",
    [
        factories.ApplicantFactory,
        factories.ExpertUserFactory,
        factories.MunicipalViewerFactory,
    ],
)
def test_pages_are_for_the_staff_only(client, auth, session, make_user):
    review, assignments = divergent()
    done, _ = agreed()
    user = make_user()
    session.commit()
    auth.login(user)
    for url in (
        "/reconciliations",
        "/decisions",
        f"/reviews/{review.id}/reconciliation",
        f"/reviews/{done.id}/decision",
    ):
        assert client.get(url).status_code == 403, url
    response = auth.post(
        f"/reviews/{review.id}/resolve",
        {"justification": "x", "counted": [str(a.id) for a in assignments]},
    )
    assert response.status_code == 403
    response = auth.post(f"/reviews/{done.id}/decision", {"decision": "admitted"})
    assert response.status_code == 403
    assert auth.post("/decisions/confirm", {"review_ids": [str(done.id)]}).status_code == 403
    assert fresh(review).state == ReviewState.RECONCILIATION
    assert fresh(done).state == ReviewState.AWAITING_DECISION


def test_an_expert_of_the_review_cannot_open_the_side_by_side_page(client, auth):
    review, assignments = divergent()
    auth.login(assignments[0].expert)
    assert client.get(f"/reviews/{review.id}/reconciliation").status_code == 403


def test_anonymous_users_are_sent_to_log_in(client, session):
    review, _ = divergent()
    response = client.get(f"/reviews/{review.id}/reconciliation")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    response = client.get("/decisions")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


# --- resolving ------------------------------------------------------------------------------


def resolve(auth, review, counted, justification):
    return auth.post(
        f"/reviews/{review.id}/resolve",
        {"counted": [str(a.id) for a in counted], "justification": justification},
    )


def test_resolve_without_justification_shows_the_error_and_changes_nothing(
    client, auth, coordinator
):
    review, assignments = divergent()
    auth.login(coordinator)
    response = resolve(auth, review, assignments, "   ")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "A written justification is required." in part(page, "resolve-error", "</div>")
    # The page is shown again with the coordinator's choice kept.
    assert 'id="side-by-side"' in page
    review = fresh(review)
    assert review.state == ReviewState.RECONCILIATION
    assert review.final_result is None and review.resolution is None


def test_resolve_without_a_sheet_chosen_is_refused(client, auth, coordinator):
    review, _ = divergent()
    auth.login(coordinator)
    response = resolve(auth, review, [], "Считаю оба листа.")
    assert response.status_code == 422
    assert "Choose the submitted sheets to count." in response.get_data(as_text=True)
    assert fresh(review).state == ReviewState.RECONCILIATION


def test_resolve_with_justification_counts_the_chosen_sheets(client, auth, session, coordinator):
    factories.expert(full_name="Третий Эксперт Резервный")
    review, assignments = divergent()
    third = third_assignment(review)
    assert third is not None and third.status == AssignmentStatus.OFFERED
    session.commit()
    auth.login(coordinator)
    page = client.get(f"/reviews/{review.id}/reconciliation").get_data(as_text=True)
    form = part(page, "resolve-form", "</form>")
    # Every submitted sheet is offered and checked; the third expert has no sheet yet.
    assert form.count('name="counted"') == 2 and form.count("checked") == 2

    response = resolve(auth, review, [assignments[0]], "Второй эксперт не учёл приложения.")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/reviews/{review.id}/decision")
    review = fresh(review)
    assert review.state == ReviewState.AWAITING_DECISION
    assert review.resolution == Resolution.COORDINATOR
    assert review.resolution_note == "Второй эксперт не учёл приложения."
    assert review.resolved_by_id == coordinator.id
    assert review.final_result["counted"] == [1]
    assert review.final_result["counted_assignments"] == [assignments[0].id]
    assert review.final_result["total"] == "18.00"
    assert review.computed_decision == Decision.ADMITTED
    assert db.session.get(Assignment, third.id).status == AssignmentStatus.WITHDRAWN

    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "The reconciliation is resolved" in page
    assert "Второй эксперт не учёл приложения." in part(page, "resolution-note", "</dd>")
    assert str(Resolution.COORDINATOR.label) in part(page, "resolution", "</dd>")


def test_resolve_is_refused_once_the_review_has_left_reconciliation(client, auth, coordinator):
    review, assignments = agreed()
    auth.login(coordinator)
    assert resolve(auth, review, assignments, "Причина.").status_code == 403
    assert fresh(review).resolution is None


# --- deciding one review --------------------------------------------------------------------


def decide(auth, review, decision, justification=""):
    return auth.post(
        f"/reviews/{review.id}/decision",
        {"decision": decision, "justification": justification},
    )


def test_decision_page_shows_the_final_result_and_the_computed_decision(client, auth, coordinator):
    review, _ = agreed()
    auth.login(coordinator)
    page = client.get(f"/reviews/{review.id}/decision").get_data(as_text=True)
    assert "15.5 of 20 points (77.5 %)" in text_of(part(page, "final-total"))
    assert ">1.5<" in part(page, "criterion-D1")
    assert "from 70 %" in part(page, "thresholds", "</dd>")
    assert "from 50 %" in part(page, "thresholds", "</dd>")
    assert str(Decision.ADMITTED.label) in part(page, "computed-decision", "</dd>")
    # The computed decision is chosen by default.
    assert re.search(r'checked[^>]*value="admitted"', part(page, "decision-form", "</form>"))
    assert f'href="/reviews/{review.id}/reconciliation"' in page


def test_decision_page_names_failed_blocking_criteria(client, auth, coordinator):
    # A1 at 0 by both experts: 18 of 20 would be admitted, the blocking criterion caps it.
    scores = factories.points(0, 2)
    review, _ = factories.scored_review(scores, scores)
    assert review.computed_decision == Decision.REVISION_REQUIRED
    auth.login(coordinator)
    page = client.get(f"/reviews/{review.id}/decision").get_data(as_text=True)
    assert "A1" in part(page, "blocking-failed", "</dd>")
    assert "blocking-failed" in opening(page, "criterion-A1")
    assert str(Decision.REVISION_REQUIRED.label) in part(page, "computed-decision", "</dd>")


def test_decide_with_the_computed_decision_admits(client, auth, coordinator):
    review, _ = agreed()
    auth.login(coordinator)
    response = decide(auth, review, "admitted")
    assert response.status_code == 302
    review = fresh(review)
    assert review.state == ReviewState.ADMITTED
    assert review.decision == Decision.ADMITTED
    assert review.override_reason is None
    assert review.decided_by_id == coordinator.id
    event = db.session.execute(
        select(AuditEvent).where(
            AuditEvent.action == "review.decide", AuditEvent.object_id == str(review.id)
        )
    ).scalar_one()
    assert event.after["override"] is False

    # Read-only afterwards: the decision, who and when; no form.
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert str(Decision.ADMITTED.label) in part(page, "decision", "</dd>")
    assert coordinator.full_name in part(page, "decided-by", "</dd>")
    assert 'id="decision-form"' not in page
    assert decide(auth, review, "admitted").status_code == 403


def test_override_without_justification_is_refused(client, auth, coordinator):
    review, _ = agreed()
    auth.login(coordinator)
    response = decide(auth, review, "rejected", "  ")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "A decision other than the computed one needs a written justification." in part(
        page, "decision-error", "</div>"
    )
    # The coordinator's choice is kept on the page.
    assert re.search(r'checked[^>]*value="rejected"', part(page, "decision-form", "</form>"))
    review = fresh(review)
    assert review.state == ReviewState.AWAITING_DECISION
    assert review.decision is None
    assert not db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "review.decide")
    ).first()


def test_override_with_justification_is_stored_and_audited(client, auth, coordinator):
    review, _ = agreed()
    auth.login(coordinator)
    reason = "Программа дублирует уже включённую в реестр."
    response = decide(auth, review, "rejected", reason)
    assert response.status_code == 302
    review = fresh(review)
    assert review.state == ReviewState.REJECTED
    assert review.decision == Decision.REJECTED
    assert review.computed_decision == Decision.ADMITTED
    assert review.override_reason == reason
    event = db.session.execute(
        select(AuditEvent).where(
            AuditEvent.action == "review.decide", AuditEvent.object_id == str(review.id)
        )
    ).scalar_one()
    assert event.after["override"] is True
    assert event.after["justification"] == reason
    assert event.actor_id == coordinator.id
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert reason in part(page, "override-reason", "</dd>")


def test_decide_with_an_unknown_decision_is_a_bad_request(client, auth, coordinator):
    review, _ = agreed()
    auth.login(coordinator)
    assert decide(auth, review, "maybe", "Почему бы и нет.").status_code == 400
    assert fresh(review).state == ReviewState.AWAITING_DECISION


# --- the list of decisions and confirming many ----------------------------------------------


def test_decisions_list_offers_only_non_divergent_reviews_for_confirmation(
    client, auth, coordinator
):
    plain, _ = agreed(title="Без расхождений")
    split, assignments = divergent(title="С расхождением")
    services.resolve_review(split, coordinator, "Считаю первый лист.", [assignments[0].id])
    db.session.commit()
    auth.login(coordinator)
    page = client.get("/decisions").get_data(as_text=True)

    row = part(page, f"review-{plain.id}")
    assert f'name="review_ids" value="{plain.id}"' in row
    assert "77.5 %" in row
    assert str(Decision.ADMITTED.label) in row
    assert "No divergence" in row

    row = part(page, f"review-{split.id}")
    assert 'name="review_ids"' not in row
    assert "Divergent" in row and str(Resolution.COORDINATOR.label) in row
    assert "90 %" in row
    assert "Confirm selected" in page


def test_bulk_confirm_confirms_plain_reviews_and_skips_the_others(client, auth, coordinator):
    plain, _ = agreed(title="Простая программа")
    decided, _ = agreed(title="Уже решённая программа")
    split, assignments = divergent(title="Спорная программа")
    services.resolve_review(split, coordinator, "Считаю первый лист.", [assignments[0].id])
    # Decided by someone else after the list was shown.
    review_services.decide_review(decided, coordinator, Decision.ADMITTED)
    db.session.commit()
    auth.login(coordinator)

    response = auth.post(
        "/decisions/confirm",
        {"review_ids": [str(plain.id), str(decided.id), str(split.id)]},
        token_from="/decisions",
    )
    # The confirmations run as a job (eagerly under TESTING); the browser goes to its page.
    assert response.status_code == 302
    assert re.search(r"/jobs/\d+$", response.headers["Location"])
    assert fresh(plain).state == ReviewState.ADMITTED
    assert fresh(plain).decision == Decision.ADMITTED
    assert fresh(split).state == ReviewState.AWAITING_DECISION
    assert fresh(decided).state == ReviewState.ADMITTED

    page = client.get("/decisions").get_data(as_text=True)
    assert "1 decision is being confirmed and its conclusion issued." in page
    skipped = page.split("2 reviews skipped:", 1)[1].split("</div>", 1)[0]
    assert "Уже решённая программа" in skipped and "no longer awaiting a decision" in skipped
    assert "Спорная программа" in skipped and "diverged" in skipped
    # What is left to decide: only the divergent one.
    assert f'id="review-{split.id}"' in page and f'id="review-{plain.id}"' not in page


def test_bulk_confirm_without_a_choice_changes_nothing(client, auth, coordinator):
    plain, _ = agreed()
    auth.login(coordinator)
    response = auth.post("/decisions/confirm", {}, follow_redirects=True)
    assert "Choose the reviews to confirm." in response.get_data(as_text=True)
    assert fresh(plain).state == ReviewState.AWAITING_DECISION


def test_bulk_confirm_rejects_garbage_ids(client, auth, coordinator):
    plain, _ = agreed()
    auth.login(coordinator)
    assert auth.post("/decisions/confirm", {"review_ids": ["x"]}).status_code == 400
    assert fresh(plain).state == ReviewState.AWAITING_DECISION


# --- links ----------------------------------------------------------------------------------


def test_coordinator_home_counts_and_navigation(client, auth, coordinator):
    divergent()
    agreed()
    agreed()
    auth.login(coordinator)
    page = client.get("/coordinator").get_data(as_text=True)
    assert part(page, "in-reconciliation", "</strong>") == ">1"
    assert part(page, "awaiting-decision", "</strong>") == ">2"
    nav = page.split('id="nav"', 1)[1].split("</ul>", 1)[0]
    assert 'href="/reconciliations"' in nav and 'href="/decisions"' in nav


def test_coordinator_home_points_at_the_programs_waiting_for_screening(
    client, auth, coordinator, session
):
    from review_portal.programs.services import submit_program

    for _ in range(2):
        program = factories.ProgramFactory()
        factories.attach_document(program)
        submit_program(program, factories.ApplicantFactory(organization=program.organization))
    factories.program_in_review()  # screened already: not counted
    session.commit()
    auth.login(coordinator)
    page = client.get("/coordinator").get_data(as_text=True)
    assert part(page, "awaiting-screening", "</strong>") == ">2"
    assert re.search(
        r'<a href="/screening" id="screening-link">Programs waiting for screening</a>', page
    )


def test_navigation_hides_the_links_from_experts(client, auth, session):
    user = factories.expert()
    session.commit()
    auth.login(user)
    page = client.get("/expert").get_data(as_text=True)
    assert 'href="/reconciliations"' not in page and 'href="/decisions"' not in page


# --- a fixed number of queries --------------------------------------------------------------


@contextmanager
def counting_statements():
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", count)


def statements_for(client, url: str) -> int:
    assert client.get(url).status_code == 200  # warm caches (settings, rubric files)
    db.session.expire_all()
    with counting_statements() as statements:
        response = client.get(url)
    assert response.status_code == 200
    return len(statements)


@pytest.mark.parametrize(
    ("url", "make"),
    [("/reconciliations", divergent), ("/decisions", agreed)],
    ids=["reconciliations", "decisions"],
)
def test_lists_use_a_fixed_number_of_queries(client, auth, session, coordinator, url, make):
    for _ in range(2):
        make()
    session.commit()
    auth.login(coordinator)
    few = statements_for(client, url)
    for _ in range(4):
        make()
    session.commit()
    many = statements_for(client, url)
    page = client.get(url).get_data(as_text=True)
    assert page.count('id="review-') == 6
    assert few == many
