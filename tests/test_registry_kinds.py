"""Several registry kinds per program: a version asks for a main kind and others; an
admission makes a pending entry in each kind whose rubric policy (``registry_kinds`` of the
rubric file: a stricter threshold, sections' own minimums) the final scores meet; each kind
numbers and publishes its entries on its own, and the conclusion says which registries."""

from __future__ import annotations

import io
import re
import shutil
from datetime import timedelta
from fractions import Fraction

import pypdf
import pytest
import sqlalchemy as sa
import yaml

from review_portal.conclusions.services import stored_pdf
from review_portal.enums import Decision, ProgramType, RegistryEntryStatus, RegistryKind
from review_portal.extensions import db
from review_portal.programs import services as programs
from review_portal.programs.models import Program
from review_portal.reconciliation import rules
from review_portal.registry.services import NOT_INCLUDED_REASON, publish_registry
from review_portal.reviews.services import decide_review
from review_portal.rubrics.registry import RUBRIC_DIR, choose_active_rubric, get_rubric
from review_portal.rubrics.schema import RubricError, validate_rubric
from review_portal.workflow import ReviewState
from tests import factories
from tests.test_programs import create_via_web, program_count
from tests.test_registry_services import all_entries

CERTIFIED = RegistryKind.CERTIFIED
SIGNIFICANT = RegistryKind.SIGNIFICANT
PRE = RegistryKind.PRE_PROFESSIONAL
POLICY = {
    # Stricter than the rubric's 70 %.
    "significant": {"admit_percent": 85},
    # Section A (the blocking criteria) must be scored in full.
    "pre_professional": {"sections": {"A": 100}},
}


def general_data() -> dict:
    return yaml.safe_load((RUBRIC_DIR / "dop-general.yaml").read_text(encoding="utf-8"))


@pytest.fixture
def kinds_rubric(app, session, tmp_path, monkeypatch):
    """The default rubric with registry kinds' policies, in a folder of this test, active
    for general developmental programs."""
    folder = tmp_path / "rubrics"
    folder.mkdir()
    shutil.copy(RUBRIC_DIR / "dop-general.yaml", folder / "dop-general.yaml")
    data = general_data()
    data["id"] = "dop-kinds"
    data["registry_kinds"] = POLICY
    (folder / "dop-kinds.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    monkeypatch.setitem(app.config, "RUBRIC_DIR", str(folder))
    rubric = get_rubric("dop-kinds", 1)
    choose_active_rubric(ProgramType.GENERAL_DEVELOPMENTAL, rubric, factories.CoordinatorFactory())
    return rubric


def decided(coordinator, totals, decision=None, justification=None, **fields):
    review, _ = factories.scored_review(*(factories.with_total(t) for t in totals), **fields)
    assert review.state == ReviewState.AWAITING_DECISION
    decide_review(review, coordinator, decision or review.computed_decision, justification)
    db.session.expire(review, ["conclusions"])
    return review, review.conclusions[-1]


def pdf_text(conclusion) -> str:
    reader = pypdf.PdfReader(io.BytesIO(stored_pdf(conclusion)))
    return " ".join(" ".join(page.extract_text().split()) for page in reader.pages)


# --- the rules --------------------------------------------------------------------------


def test_kinds_failed_compares_exactly_and_lists_the_sections_below(kinds_rubric):
    # Final scores: A in full, the rest 1 of 2 → 12 of 20 = 60 %; 17 of 20 = 85 % exactly.
    full_a = {"A1": 2, "A2": 2}
    low = {**{c: Fraction(1) for c in factories.DEFAULT_CRITERIA}, **full_a}
    assert rules.kinds_failed(kinds_rubric, low, 12, 20) == {
        "significant": {"percent": True, "sections": []}
    }
    assert rules.kinds_failed(kinds_rubric, low, 17, 20) == {}
    half_a = {**low, "A1": Fraction(3, 2)}
    assert rules.kinds_failed(kinds_rubric, half_a, 17, 20) == {
        "pre_professional": {"percent": False, "sections": ["A"]}
    }
    # A rubric without policies: no key at all (results stored before stay as they were).
    assert rules.kinds_failed(general_data(), low, 12, 20) is None


@pytest.mark.parametrize(
    ("policy", "field", "problem"),
    [
        (
            {"significant": {"admit_percent": 60}},
            "registry_kinds.significant.admit_percent",
            "must be at least decision.admit_percent (70); got 60",
        ),
        (
            {"significant": {"sections": {"Z": 50}}},
            "registry_kinds.significant.sections.Z",
            "is not the id of a section",
        ),
        ({"honorary": {"admit_percent": 90}}, "registry_kinds", "must be one of"),
        (
            {"significant": {"admit_percent": 120}},
            "registry_kinds.significant.admit_percent",
            "must be at most 100",
        ),
        ({"significant": {}}, "registry_kinds.significant", "must not be empty"),
    ],
)
def test_a_broken_policy_stops_the_start_naming_the_file_and_field(policy, field, problem):
    data = general_data()
    data["registry_kinds"] = policy
    with pytest.raises(RubricError) as error:
        validate_rubric(data, "dop-kinds.yaml")
    message = str(error.value)
    line = next(line for line in message.splitlines() if f"dop-kinds.yaml: {field}" in line)
    assert problem in line, message


def test_a_policy_section_must_apply_to_every_program():
    data = general_data()
    for criterion in data["sections"][0]["criteria"]:
        criterion["applies_if"] = {"adapted_for_disabilities": True}
    data["registry_kinds"] = {"pre_professional": {"sections": {"A": 100}}}
    with pytest.raises(RubricError) as error:
        validate_rubric(data, "x.yaml")
    assert "x.yaml: registry_kinds.pre_professional.sections.A: the section has no criterion" in (
        str(error.value)
    )


# --- an admission, end to end -------------------------------------------------------------


def test_an_admission_enters_each_asked_kind_whose_policy_it_meets(session, client, kinds_rubric):
    coordinator = factories.CoordinatorFactory()
    # 16 of 20 (80 %): admitted; below the significant kind's 85 %; section A in full.
    review, conclusion = decided(
        coordinator,
        (16, 16),
        requested_registry_kind=CERTIFIED,
        additional_registry_kinds=["pre_professional", "significant"],
    )
    assert conclusion.decision == Decision.ADMITTED
    assert review.version.registry_kinds == (CERTIFIED, SIGNIFICANT, PRE)
    assert review.final_result["kinds_failed"] == {"significant": {"percent": True, "sections": []}}
    rows = all_entries()
    assert [(e.kind, e.status, e.conclusion_id) for e in rows] == [
        (CERTIFIED, RegistryEntryStatus.PENDING_INCLUSION, conclusion.id),
        (PRE, RegistryEntryStatus.PENDING_INCLUSION, conclusion.id),
    ]
    text = pdf_text(conclusion)
    assert "Включение в реестры, о которых просит организация:" in text
    assert "реестр сертифицированных программ — рекомендована к включению;" in text
    assert (
        "реестр социально значимых программ — не рекомендована к включению: итоговый процент "
        "ниже 85 %;" in text
    )
    assert "реестр предпрофессиональных программ — рекомендована к включению." in text

    # Each kind numbers and publishes its own entries.
    other, _ = decided(coordinator, (16, 16), requested_registry_kind=PRE)
    certified = publish_registry(CERTIFIED, coordinator)
    pre = publish_registry(PRE, coordinator)
    assert (certified.number, certified.entry_count, pre.number, pre.entry_count) == (1, 1, 1, 2)
    numbers = {(e.kind, e.program_id): e.registry_number for e in all_entries()}
    assert numbers[(CERTIFIED, review.program_id)].endswith("-С-000001")
    assert numbers[(PRE, review.program_id)].endswith("-П-000001")
    assert numbers[(PRE, other.program_id)].endswith("-П-000002")
    session.commit()

    title = review.version.title
    page = client.get("/registry?kind=pre_professional").get_data(as_text=True)
    assert title in page and other.version.title in page
    assert client.get("/registry?kind=significant").get_data(as_text=True).count(title) == 0
    api = client.get("/api/v1/registry?kind=certified").get_json()
    assert [item["title"] for item in api["items"]] == [title]
    assert client.get("/api/v1/registry?kind=pre_professional").get_json()["total"] == 2


def test_a_renewal_below_a_kinds_threshold_takes_the_program_out_of_that_kind(
    session, kinds_rubric
):
    coordinator = factories.CoordinatorFactory()
    review, _ = decided(coordinator, (18, 18), additional_registry_kinds=["significant"])
    assert [e.kind for e in all_entries()] == [CERTIFIED, SIGNIFICANT]
    publish_registry(CERTIFIED, coordinator)
    publish_registry(SIGNIFICANT, coordinator)
    certified, significant = all_entries()
    program = review.program
    applicant = factories.ApplicantFactory(organization=program.organization)
    programs.start_renewal(program, applicant, today=certified.valid_until - timedelta(days=30))
    factories.attach_document(program)
    programs.submit_program(program, applicant)
    programs.accept_submission(program, coordinator)
    # 16 of 20 (80 %): admitted again, but below the significant kind's 85 %.
    renewal, conclusion = decided(coordinator, (16, 16), program=program)
    assert renewal.round == 2 and conclusion.decision == Decision.ADMITTED
    certified, significant = all_entries()
    assert (certified.status, certified.conclusion_id) == (
        RegistryEntryStatus.INCLUDED,
        conclusion.id,
    )
    assert significant.status == RegistryEntryStatus.PENDING_REMOVAL
    assert significant.removal_reason == NOT_INCLUDED_REASON
    snapshot = publish_registry(SIGNIFICANT, coordinator)
    assert snapshot.entry_count == 0
    assert all_entries()[1].status == RegistryEntryStatus.REMOVED


def test_the_main_kinds_policy_caps_the_decision(session, auth, kinds_rubric):
    """The decision is about the registry the program mainly asks for: below that kind's
    stricter threshold the program is sent for revision, and the pages and the conclusion
    say which requirement it misses."""
    review, _ = factories.scored_review(
        factories.with_total(16),
        factories.with_total(16),
        requested_registry_kind=SIGNIFICANT,
        additional_registry_kinds=["certified"],
    )
    assert review.final_result["main_kind"] == "significant"
    assert review.computed_decision == Decision.REVISION_REQUIRED
    coordinator = factories.CoordinatorFactory()
    session.commit()
    auth.login(coordinator)
    page = auth.client.get(f"/reviews/{review.id}/decision").get_data(as_text=True)
    caps = page.split('id="main-kind-failed">', 1)[1].split("</dd>", 1)[0]
    assert "Социально значимые программы:" in caps
    assert "процент ниже порога этого реестра" in caps
    auth.logout()
    decide_review(review, coordinator, review.computed_decision, None)
    db.session.expire(review, ["conclusions"])
    text = pdf_text(review.conclusions[-1])
    assert (
        "Требования реестра социально значимых программ не выполнены: итоговый процент ниже "
        "85 %; программа не может быть рекомендована к включению в этот реестр." in text
    )
    assert "Включение в реестры" not in text
    assert all_entries() == []


def test_an_override_to_admission_includes_the_main_kind_whatever_its_policy(session, kinds_rubric):
    coordinator = factories.CoordinatorFactory()
    review, conclusion = decided(
        coordinator,
        (16, 16),
        Decision.ADMITTED,
        "Программа социально значима для района: единственная в муниципалитете.",
        requested_registry_kind=SIGNIFICANT,
        additional_registry_kinds=["certified"],
    )
    assert review.computed_decision == Decision.REVISION_REQUIRED
    assert conclusion.decision == Decision.ADMITTED
    assert [(e.kind, e.status) for e in all_entries()] == [
        (SIGNIFICANT, RegistryEntryStatus.PENDING_INCLUSION),
        (CERTIFIED, RegistryEntryStatus.PENDING_INCLUSION),
    ]
    text = pdf_text(conclusion)
    assert "реестр социально значимых программ — рекомендована к включению;" in text
    assert "реестр сертифицированных программ — рекомендована к включению." in text


# --- the program card -----------------------------------------------------------------------


@pytest.fixture
def provider(session):
    return factories.ApplicantFactory()


def test_the_card_asks_for_other_kinds_without_repeating_the_main_one(english, auth, provider):
    auth.login(provider)
    response = create_via_web(
        auth,
        provider,
        requested_registry_kind="significant",
        additional_registry_kinds=["pre_professional", "significant", "certified"],
    )
    assert response.status_code == 302
    program = db.session.execute(sa.select(Program)).scalar_one()
    assert program.requested_registry_kind == SIGNIFICANT
    assert program.additional_registry_kinds == ["certified", "pre_professional"]
    page = auth.client.get(f"/programs/{program.id}").get_data(as_text=True)
    assert "Socially significant programs, Certified programs, Pre-professional programs" in page
    edit = auth.client.get(f"/programs/{program.id}/edit").get_data(as_text=True)
    assert re.search(r'value="certified"[^>]*checked|checked[^>]*value="certified"', edit)


def test_an_unknown_kind_is_refused_next_to_the_field_and_nothing_is_written(
    english, auth, provider
):
    auth.login(provider)
    response = create_via_web(auth, provider, additional_registry_kinds=["honorary"])
    # The card's form answers with its errors (as for every other field of the card).
    assert response.status_code == 200
    assert "Choose from the options offered." in response.get_data(as_text=True)
    assert program_count() == 0
