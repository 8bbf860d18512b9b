"""Appeals: filing, accepting, refusing, the panel (fresh experts, blind), upholding with a
superseding conclusion, dismissing with a numbered decision — on SQLite and PostgreSQL.

Every outcome is read back from the database, the pages and the PDF bytes."""

from __future__ import annotations

import io
import itertools
from datetime import timedelta

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from review_portal.appeals import services
from review_portal.appeals.models import Appeal
from review_portal.assignment.eligibility import Reason
from review_portal.assignment.services import assign_manually, candidates
from review_portal.audit.models import AuditEvent
from review_portal.conclusions.models import Conclusion
from review_portal.enums import (
    AppealState,
    AssignmentStatus,
    ConclusionStatus,
    Decision,
    RefusalGround,
    RegistryEntryStatus,
    ReviewKind,
)
from review_portal.errors import DomainError, Forbidden
from review_portal.extensions import db
from review_portal.registry.models import RegistryEntry
from review_portal.reviews.services import decide_review
from review_portal.workflow import (
    APPEAL_TRANSITIONS,
    ActorKind,
    ActorNotAllowed,
    ReasonRequired,
    ReviewState,
    TransitionNotAllowed,
    advance_appeal,
)
from tests.factories import (
    ApplicantFactory,
    CoordinatorFactory,
    expert,
    scored_review,
    submit_scores,
    with_total,
)

#: The contested criteria: scored 0 by both experts in every sheet of ``with_total(8)`` and
#: ``with_total(12)``.
REASONS = {
    "C1": "Цель программы сформулирована в разделе 1.2, эксперты её не учли.",
    "D1": "Учебный план приложен (файл 2), содержание соответствует.",
}


def decided(total: int = 8, coordinator=None):
    """A program whose review is decided on two sheets of ``total`` points each (8 of 20:
    rejected; 12: revision), its real conclusion issued. Returns (review, conclusion,
    coordinator, provider)."""
    coordinator = coordinator or CoordinatorFactory()
    review, _ = scored_review(with_total(total), with_total(total))
    assert review.state == ReviewState.AWAITING_DECISION
    decide_review(review, coordinator, review.computed_decision)
    conclusion = review.conclusions[-1]
    provider = ApplicantFactory(organization=review.program.organization)
    return review, conclusion, coordinator, provider


def panel_experts(count: int = 2):
    return [expert(full_name=f"Апелляционный Эксперт{n} Коллегии") for n in range(count)]


def accepted(total: int = 8):
    review, conclusion, coordinator, provider = decided(total)
    panel_experts()
    appeal = services.file_appeal(conclusion, provider, REASONS)
    panel = services.accept_appeal(appeal, coordinator)
    return review, conclusion, coordinator, provider, appeal, panel


def score_panel(panel, scores):
    """Accept and submit every panel seat with ``scores``."""
    live = [a for a in panel.assignments if a.status != AssignmentStatus.DECLINED]
    assert len(live) == 2
    for assignment in live:
        assignment.status = AssignmentStatus.ACCEPTED
    db.session.flush()
    for assignment in live:
        submit_scores(assignment, scores)
    db.session.refresh(panel)


# --- filing ----------------------------------------------------------------------------------


def test_provider_files_an_appeal_within_the_window(session):
    review, conclusion, coordinator, provider = decided()
    appeal = services.file_appeal(conclusion, provider, {**REASONS, "A1": "  "})
    assert appeal.state == AppealState.FILED
    assert appeal.contested == ["C1", "D1"]
    assert appeal.appealed_decision == Decision.REJECTED
    assert appeal.window_ends_on == services.window_ends_on(conclusion)
    event = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "appeal.file")
    ).scalar_one()
    assert event.object_id == str(appeal.id)
    # The coordinators hear of it.
    from review_portal.notifications.models import Notification

    told = db.session.execute(
        select(Notification).where(Notification.user_id == coordinator.id)
    ).scalars()
    assert any("апелляц" in n.text.lower() for n in told)


def test_a_late_appeal_is_refused(session):
    review, conclusion, coordinator, provider = decided()
    conclusion.issued_at = conclusion.issued_at - timedelta(days=40)
    db.session.flush()
    with pytest.raises(services.AppealError) as error:
        services.file_appeal(conclusion, provider, REASONS)
    assert "Срок подачи апелляции истёк" in str(error.value.message)
    assert db.session.execute(select(Appeal)).first() is None


def test_a_second_appeal_against_the_same_conclusion_is_refused(session):
    review, conclusion, coordinator, provider = decided()
    services.file_appeal(conclusion, provider, REASONS)
    with pytest.raises(services.AppealError) as error:
        services.file_appeal(conclusion, provider, REASONS)
    assert "уже подана" in str(error.value.message)
    assert len(db.session.execute(select(Appeal)).all()) == 1


def test_an_admitted_program_cannot_be_appealed(session):
    review, conclusion, coordinator, provider = decided(total=16)
    assert conclusion.decision == Decision.ADMITTED
    with pytest.raises(services.AppealError):
        services.file_appeal(conclusion, provider, REASONS)


def test_only_the_provider_appeals_and_with_reasons(session):
    review, conclusion, coordinator, provider = decided()
    with pytest.raises(Forbidden):
        services.file_appeal(conclusion, coordinator, REASONS)
    stranger = ApplicantFactory()
    with pytest.raises(Forbidden):
        services.file_appeal(conclusion, stranger, REASONS)
    with pytest.raises(services.AppealError):
        services.file_appeal(conclusion, provider, {"A1": "   "})
    with pytest.raises(services.AppealError):
        services.file_appeal(conclusion, provider, {"Z9": "нет такого критерия"})
    assert db.session.execute(select(Appeal)).first() is None


# --- refusing and accepting ------------------------------------------------------------------


def test_coordinator_refuses_with_a_reason(session):
    review, conclusion, coordinator, provider = decided()
    appeal = services.file_appeal(conclusion, provider, REASONS)
    with pytest.raises(services.AppealError):
        services.refuse_appeal(appeal, coordinator, RefusalGround.UNFOUNDED, "  ")
    services.refuse_appeal(
        appeal, coordinator, RefusalGround.UNFOUNDED, "Доводы не относятся к критериям."
    )
    assert appeal.state == AppealState.REFUSED
    assert appeal.answer == "Доводы не относятся к критериям."
    assert conclusion.status == ConclusionStatus.VALID
    assert review.program.current_review_id == review.id
    with pytest.raises(services.AppealError):
        services.accept_appeal(appeal, coordinator)


def test_accepting_opens_a_panel_of_experts_who_never_scored_the_program(session):
    review, conclusion, coordinator, provider = decided()
    originals = {a.expert_id for a in review.assignments}
    fresh = panel_experts()
    appeal = services.file_appeal(conclusion, provider, REASONS)
    panel = services.accept_appeal(appeal, coordinator)
    assert appeal.state == AppealState.ACCEPTED
    assert panel.kind == ReviewKind.APPEAL
    assert panel.state == ReviewState.IN_REVIEW
    assert panel.version_id == review.version_id
    assert appeal.panel_review_id == panel.id and appeal.review_id == review.id
    assert review.program.current_review_id == panel.id
    seated = {a.expert_id for a in panel.assignments}
    assert seated == {e.id for e in fresh}
    assert not seated & originals
    # The default rubric's panels score the contested criteria only.
    assert panel.scope_criteria == ["C1", "D1"]
    assert set(panel.fixed_scores) == {"A1", "A2", "B1", "B2", "B3", "B4", "D2", "D3"}
    # An expert who scored the original review is not eligible, and cannot be put there.
    reasons = {e.id: r for e, r in candidates(panel)}
    for expert_id in originals:
        assert Reason.SCORED_BEFORE in reasons[expert_id]
    original_expert = review.assignments[0].expert
    with pytest.raises(DomainError):
        assign_manually(panel, original_expert, coordinator)


def test_an_appeal_whose_program_moved_on_cannot_be_accepted(session):
    review, conclusion, coordinator, provider = decided(total=12)
    assert conclusion.decision == Decision.REVISION_REQUIRED
    appeal = services.file_appeal(conclusion, provider, REASONS)
    from review_portal.programs.services import submit_program

    submit_program(review.program, provider)
    with pytest.raises(services.AppealError):
        services.accept_appeal(appeal, coordinator)
    assert appeal.state == AppealState.FILED


# --- deciding --------------------------------------------------------------------------------


def test_an_upheld_appeal_supersedes_the_conclusion(session, client):
    review, conclusion, coordinator, provider, appeal, panel = accepted(total=8)
    # The panel gives full marks on C1 and D1: 8 → 12 of 20 (60 %): revision.
    scores = {"C1": 2, "D1": 2}
    score_panel(panel, scores)
    assert panel.state == ReviewState.AWAITING_DECISION
    assert panel.computed_decision == Decision.REVISION_REQUIRED
    services.decide_appeal(appeal, coordinator, Decision.REVISION_REQUIRED, "")
    assert appeal.state == AppealState.UPHELD
    new = appeal.new_conclusion
    assert new.review_id == panel.id and new.decision == Decision.REVISION_REQUIRED
    assert conclusion.status == ConclusionStatus.SUPERSEDED
    assert conclusion.superseded_by_id == new.id
    assert review.program.current_review_id == panel.id
    assert panel.state == ReviewState.REVISION_REQUIRED
    pdf = PdfReader(io.BytesIO(services.storage.read_bytes(new.storage_key)))
    text = " ".join(page.extract_text() for page in pdf.pages)
    assert f"Заменяет заключение № {conclusion.number}" in text
    assert "по результатам рассмотрения апелляции" in text
    db.session.commit()
    page = client.get(f"/verify/{conclusion.number}").get_data(as_text=True)
    assert "Заменено" in page and new.number in page and "апелляц" in page


def test_an_upheld_admission_enters_the_registry_pending_changes(session):
    review, conclusion, coordinator, provider, appeal, panel = accepted(total=12)
    assert appeal.appealed_decision == Decision.REVISION_REQUIRED
    # 12 → 16 of 20 (80 %): admitted.
    score_panel(panel, {"C1": 2, "D1": 2})
    assert panel.computed_decision == Decision.ADMITTED
    services.decide_appeal(appeal, coordinator, Decision.ADMITTED, "")
    entry = db.session.execute(
        select(RegistryEntry).where(RegistryEntry.program_id == review.program_id)
    ).scalar_one()
    assert entry.status == RegistryEntryStatus.PENDING_INCLUSION
    assert entry.conclusion_id == appeal.new_conclusion_id


def test_a_dismissed_appeal_issues_a_numbered_verifiable_decision(session, client):
    review, conclusion, coordinator, provider, appeal, panel = accepted(total=8)
    # The panel agrees with the original scores: the decision stands.
    original = {c: v for c, v in with_total(8).items() if c in REASONS}
    score_panel(panel, original)
    assert panel.computed_decision == Decision.REJECTED
    with pytest.raises(services.AppealError):
        services.decide_appeal(appeal, coordinator, Decision.REJECTED, "  ")
    answer = "Новая коллегия подтвердила оценки по критериям C1 и D1."
    services.decide_appeal(appeal, coordinator, Decision.REJECTED, answer)
    assert appeal.state == AppealState.DISMISSED
    assert appeal.number.endswith("-A00001")
    assert conclusion.status == ConclusionStatus.VALID
    assert review.program.current_review_id == review.id
    assert panel.state == ReviewState.REJECTED
    assert (
        db.session.execute(select(Conclusion).where(Conclusion.review_id == panel.id)).first()
        is None
    )
    data = services.stored_decision_pdf(appeal)
    assert services.hashlib.sha256(data).hexdigest() == appeal.sha256
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
    # The title and each page's footer name the decision, never a conclusion.
    assert text.count(f"Решение по апелляции № {appeal.number}") >= 2
    assert "Экспертное заключение № " + appeal.number not in text
    assert answer in text and appeal.content_sha256 in text
    db.session.commit()
    page = client.get(f"/verify/appeal/{appeal.number}")
    assert page.status_code == 200
    assert appeal.sha256 in page.get_data(as_text=True)
    as_json = client.get(f"/verify/appeal/{appeal.number}", headers={"Accept": "application/json"})
    assert as_json.json["conclusion"] == conclusion.number
    # The number form sends it to its own page.
    assert (
        client.get(f"/verify?number={appeal.number}")
        .headers["Location"]
        .endswith(f"/verify/appeal/{appeal.number}")
    )


def test_contested_scope_keeps_the_other_final_scores(session):
    review, conclusion, coordinator, provider, appeal, panel = accepted(total=8)
    live = list(panel.assignments)
    for assignment in live:
        assignment.status = AssignmentStatus.ACCEPTED
    db.session.flush()
    from review_portal.scoring.services import SheetInvalid, submit_sheet
    from tests.factories import save_scores

    # Scores given for uncontested criteria are not the panel's: they are dropped.
    save_scores(live[0], {"C1": 2, "D1": 2, "A1": 0})
    assert {s.criterion_id: s.value for s in live[0].sheet.scores}["A1"] is None
    submit_sheet(live[0], live[0].expert)
    save_scores(live[1], {"C1": 2})
    with pytest.raises(SheetInvalid) as missing:
        submit_sheet(live[1], live[1].expert)
    assert set(missing.value.errors) == {"D1"}
    save_scores(live[1], {"C1": 2, "D1": 2})
    submit_sheet(live[1], live[1].expert)
    db.session.refresh(panel)
    original = review.final_result["scores"]
    final = panel.final_result["scores"]
    for criterion in ("A1", "B2", "D2", "D3"):
        assert final[criterion] == original[criterion]
    assert final["C1"] == final["D1"] == "2.00"


# --- blind review ----------------------------------------------------------------------------


def test_panel_reads_the_arguments_and_original_sheets_without_names(session, client, auth):
    review, conclusion, coordinator, provider, appeal, panel = accepted(total=8)
    seat = panel.assignments[0]
    seat.status = AssignmentStatus.ACCEPTED
    db.session.commit()
    auth.login(seat.expert)
    page = client.get(f"/sheets/{seat.id}").get_data(as_text=True)
    assert REASONS["C1"] in page
    assert "Эксперт 1" in page and "Эксперт 2" in page
    for original in review.assignments:
        assert original.expert.full_name not in page
        assert original.expert.email not in page
    # Uncontested criteria have no score field on the panel's sheet; the total counts their
    # appealed final scores (8 of 20: the contested C1 and D1 are not scored yet).
    assert 'name="score-A1"' not in page and 'name="score-C1"' in page
    assert "8 из 20 баллов" in page
    auth.logout()
    # The provider's appeal page names no expert either.
    auth.login(provider)
    page = client.get(f"/appeals/{appeal.id}").get_data(as_text=True)
    assert REASONS["D1"] in page
    for assignment in [*review.assignments, *panel.assignments]:
        assert assignment.expert.full_name not in page


def test_an_original_expert_cannot_open_the_panel_sheets(session, client, auth):
    review, conclusion, coordinator, provider, appeal, panel = accepted(total=8)
    db.session.commit()
    original = review.assignments[0].expert
    auth.login(original)
    for seat in panel.assignments:
        assert client.get(f"/sheets/{seat.id}").status_code == 403


# --- the pages -------------------------------------------------------------------------------


def test_appeal_through_the_pages(session, client, auth):
    review, conclusion, coordinator, provider = decided()
    panel_experts()
    db.session.commit()
    auth.login(provider)
    result = client.get(f"/reviews/{review.id}/result")
    assert f"/conclusions/{conclusion.id}/appeal" in result.get_data(as_text=True)
    form_page = client.get(f"/conclusions/{conclusion.id}/appeal")
    assert form_page.status_code == 200
    bad = auth.post(
        f"/conclusions/{conclusion.id}/appeal",
        {"reason_C1": "   "},
        token_from=f"/conclusions/{conclusion.id}/appeal",
    )
    assert bad.status_code == 422
    assert "хотя бы по одному" in bad.get_data(as_text=True)
    assert db.session.execute(select(Appeal)).first() is None
    filed = auth.post(
        f"/conclusions/{conclusion.id}/appeal",
        {
            "reason_C1": REASONS["C1"],
            "file": (io.BytesIO(b"%PDF-1.4\n1 0 obj<<>>endobj\n%%EOF\n"), "довод.pdf"),
        },
        token_from=f"/conclusions/{conclusion.id}/appeal",
        content_type="multipart/form-data",
    )
    assert filed.status_code == 302, filed.get_data(as_text=True)
    appeal = db.session.execute(select(Appeal)).scalar_one()
    assert [f.name for f in appeal.files] == ["довод.pdf"]
    after = client.get(f"/reviews/{review.id}/result").get_data(as_text=True)
    assert f"/appeals/{appeal.id}" in after
    assert f"/conclusions/{conclusion.id}/appeal" not in after
    auth.logout()
    auth.login(coordinator)
    preview = auth.post(
        f"/appeals/{appeal.id}/accept", {"step": "preview"}, token_from=f"/appeals/{appeal.id}"
    )
    assert preview.status_code == 200 and "Принять апелляцию" in preview.get_data(as_text=True)
    db.session.refresh(appeal)
    assert appeal.state == AppealState.FILED
    done = auth.post(f"/appeals/{appeal.id}/accept", {}, token_from=f"/appeals/{appeal.id}")
    assert done.status_code == 302
    db.session.refresh(appeal)
    assert appeal.state == AppealState.ACCEPTED
    listing = client.get("/appeals").get_data(as_text=True)
    assert review.program.title in listing


# --- the appeal state machine, walked exhaustively -------------------------------------------

APPEAL_PAIRS = list(itertools.product(AppealState, AppealState))


@pytest.mark.parametrize("pair", APPEAL_PAIRS, ids=lambda p: f"{p[0].value}->{p[1].value}")
def test_appeal_state_machine(session, pair):
    source, target = pair
    review, conclusion, coordinator, provider = decided()
    appeal = services.file_appeal(conclusion, provider, REASONS)
    if source != AppealState.FILED:
        # Put the appeal directly in ``source`` (construction-like write, for the walk).
        from review_portal.workflow import _assigning

        with _assigning():
            appeal.state = source
    transition = APPEAL_TRANSITIONS.get(pair)
    if transition is None:
        with pytest.raises(TransitionNotAllowed):
            advance_appeal(appeal, target, coordinator, reason="причина")
        return
    with pytest.raises(ActorNotAllowed):
        advance_appeal(appeal, target, provider, reason="причина")
    if ActorKind.COORDINATOR in transition.reason_from:
        with pytest.raises(ReasonRequired):
            advance_appeal(appeal, target, coordinator, reason="  ")
    advance_appeal(appeal, target, coordinator, reason="причина")
    assert appeal.state == target
    event = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == f"appeal.{transition.name}")
    ).scalar_one()
    assert event.after["state"] == target.value


def test_appeal_state_is_written_only_through_the_machine(session):
    review, conclusion, coordinator, provider = decided()
    appeal = services.file_appeal(conclusion, provider, REASONS)
    from review_portal.workflow import WorkflowError

    with pytest.raises(WorkflowError):
        appeal.state = AppealState.UPHELD


def test_the_digest_counts_appeals_waiting_for_the_center(session):
    from review_portal.main.digest import center_waiting

    def appeals_line(hidden=()):
        return next(item for item in center_waiting(hidden) if "/appeals" in item[2])

    review, conclusion, coordinator, provider = decided()
    assert appeals_line()[1] == 0
    appeal = services.file_appeal(conclusion, provider, REASONS)
    assert appeals_line()[0] == "Апелляции: принять, отказать или решить"
    assert appeals_line()[1] == 1
    # Not for a reader who sits on the appealed review.
    assert appeals_line([review.id])[1] == 0
    panel_experts()
    panel = services.accept_appeal(appeal, coordinator)
    assert appeals_line()[1] == 0  # the panel is at work
    score_panel(panel, {"C1": 0, "D1": 0})
    assert appeals_line()[1] == 1


def test_an_open_appeals_panel_is_decided_only_through_its_appeal(session, client, auth):
    from review_portal.conclusions.bulk import start_bulk_issue
    from review_portal.reviews.services import ReviewError

    review, conclusion, coordinator, provider, appeal, panel = accepted(total=8)
    score_panel(panel, {"C1": 2, "D1": 2})
    assert panel.state == ReviewState.AWAITING_DECISION
    with pytest.raises(ReviewError):
        decide_review(panel, coordinator, panel.computed_decision)
    job, refused = start_bulk_issue([panel.id], coordinator)
    assert job is None and [item.review.id for item in refused] == [panel.id]
    assert panel.state == ReviewState.AWAITING_DECISION
    db.session.commit()
    auth.login(coordinator)
    page = client.get("/decisions").get_data(as_text=True)
    assert "решение принимается на странице апелляции" in page
    assert f'id="choose-{panel.id}"' not in page


def test_a_coordinator_who_scored_the_appealed_review_is_only_an_expert_on_its_panel(
    session, client, auth
):
    from review_portal.accounts.models import UserRole
    from review_portal.enums import Role
    from review_portal.permissions import is_staff_on

    review, conclusion, coordinator, provider, appeal, panel = accepted(total=8)
    original = review.assignments[0].expert
    db.session.add(UserRole(user_id=original.id, role=Role.COORDINATOR))
    db.session.flush()
    db.session.refresh(original)
    assert original.has_role(Role.COORDINATOR)
    assert not is_staff_on(original, panel)
    # And a panel expert is only an expert on the appealed review.
    panel_expert = panel.assignments[0].expert
    db.session.add(UserRole(user_id=panel_expert.id, role=Role.COORDINATOR))
    db.session.flush()
    db.session.refresh(panel_expert)
    assert not is_staff_on(panel_expert, review)
    db.session.commit()
    auth.login(original)
    assert client.get(f"/reviews/{panel.id}/experts").status_code == 403
    assert client.get(f"/appeals/{appeal.id}").status_code == 403


def test_the_provider_reads_the_panels_scores_only_once_decided(session, client, auth):
    review, conclusion, coordinator, provider, appeal, panel = accepted(total=8)
    score_panel(panel, {"C1": 2, "D1": 2})
    db.session.commit()
    auth.login(provider)
    assert "Итоговый балл коллегии" not in client.get(f"/appeals/{appeal.id}").get_data(
        as_text=True
    )
    auth.logout()
    auth.login(coordinator)
    assert "Итоговый балл коллегии" in client.get(f"/appeals/{appeal.id}").get_data(as_text=True)
    services.decide_appeal(appeal, coordinator, Decision.REVISION_REQUIRED, "")
    db.session.commit()
    auth.logout()
    auth.login(provider)
    assert "Итоговый балл коллегии" in client.get(f"/appeals/{appeal.id}").get_data(as_text=True)


def test_the_provider_is_told_each_decision_once_also_after_an_appeal(session):
    """An upheld appeal tells the provider through the appeal (no second "decision" mail);
    the panel's conclusion revoked later and decided again is told like any decision."""
    from review_portal.conclusions.services import revoke_conclusion
    from review_portal.notifications.models import OutboxMessage

    def subjects():
        return [
            m.subject
            for m in db.session.execute(
                select(OutboxMessage).where(OutboxMessage.to_email == provider.email)
            ).scalars()
        ]

    review, conclusion, coordinator, provider, appeal, panel = accepted(total=8)
    score_panel(panel, {"C1": 2, "D1": 2})
    before = subjects()
    services.decide_appeal(appeal, coordinator, Decision.REVISION_REQUIRED, "")
    told = subjects()[len(before) :]
    assert len(told) == 1 and "апелляция удовлетворена" in told[0].lower(), told
    revoke_conclusion(appeal.new_conclusion, coordinator, "Ошибка в расчёте")
    assert panel.state == ReviewState.AWAITING_DECISION
    before = subjects()
    decide_review(panel, coordinator, panel.computed_decision)
    told = subjects()[len(before) :]
    assert len(told) == 1 and told[0].startswith("Решение по вашей программе"), told
