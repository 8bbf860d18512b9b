"""factory-boy factories for the models, bound to the test's database session."""

from __future__ import annotations

import random

import factory
import sqlalchemy as sa
from factory.alchemy import SQLAlchemyModelFactory

from review_portal.accounts.models import User
from review_portal.accounts.services import CONSENT_VERSION, hash_password
from review_portal.db import utcnow
from review_portal.enums import (
    AccountStatus,
    Direction,
    Level,
    OrganizationType,
    Role,
    StudyForm,
)
from review_portal.experts.models import ExpertProfile
from review_portal.extensions import db
from review_portal.organizations.models import Municipality, Organization
from review_portal.programs.models import Program
from review_portal.reviews.models import Review

PASSWORD = "Correct-horse-42"

_rng = random.Random(20261122)


def make_inn(length: int = 10) -> str:
    """A random ИНН with correct control digits."""
    from review_portal.organizations.validators import with_inn_check_digits

    body = "".join(str(_rng.randint(0, 9)) for _ in range(9 if length == 10 else 10))
    return with_inn_check_digits(body)


class Base(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731
        sqlalchemy_session_persistence = "flush"


class MunicipalityFactory(Base):
    class Meta:
        model = Municipality

    name = factory.Sequence(lambda n: f"Муниципальный округ № {n}")


class OrganizationFactory(Base):
    class Meta:
        model = Organization

    full_name = factory.Sequence(lambda n: f"Муниципальное бюджетное учреждение ДО «Центр № {n}»")
    short_name = factory.Sequence(lambda n: f"МБУ ДО «Центр № {n}»")
    inn = factory.LazyFunction(make_inn)
    kind = OrganizationType.MUNICIPAL
    municipality = factory.SubFactory(MunicipalityFactory)
    status = AccountStatus.APPROVED


def with_roles(*default: Role) -> factory.PostGeneration:
    """Roles given as ``roles=[...]`` to the factory call, else ``default``."""

    def apply(user, create, extracted, **kwargs):
        for role in default if extracted is None else extracted:
            user.add_role(Role(role))
        if create:
            db.session.flush()

    return factory.PostGeneration(apply)


class UserFactory(Base):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.org")
    full_name = factory.Sequence(lambda n: f"Пользователь {n}")
    password_hash = factory.LazyFunction(lambda: hash_password(PASSWORD))
    status = AccountStatus.APPROVED
    consent_at = factory.LazyFunction(utcnow)
    consent_version = CONSENT_VERSION

    roles = with_roles()


class ApplicantFactory(UserFactory):
    organization = factory.SubFactory(OrganizationFactory)
    roles = with_roles(Role.APPLICANT)


class CoordinatorFactory(UserFactory):
    roles = with_roles(Role.COORDINATOR)


class AdminFactory(UserFactory):
    roles = with_roles(Role.ADMIN)


class MunicipalViewerFactory(UserFactory):
    municipality = factory.SubFactory(MunicipalityFactory)
    roles = with_roles(Role.MUNICIPAL)


class ExpertUserFactory(UserFactory):
    roles = with_roles(Role.EXPERT)
    expert_profile = factory.RelatedFactory(
        "tests.factories.ExpertProfileFactory", factory_related_name="user"
    )


class ExpertProfileFactory(Base):
    class Meta:
        model = ExpertProfile

    user = factory.SubFactory(UserFactory, roles=(Role.EXPERT,))
    municipality = factory.SubFactory(MunicipalityFactory)
    home_organization_name = "МБОУ «Средняя школа № 1»"
    qualification = "Педагог дополнительного образования высшей категории"
    capacity = 5

    @factory.post_generation
    def directions(self, create, extracted, **kwargs):
        self.set_directions(extracted or [Direction.TECHNICAL])


class ProgramFactory(Base):
    """A program with its draft review (as creating a program does)."""

    class Meta:
        model = Program

    organization = factory.SubFactory(OrganizationFactory)
    title = factory.Sequence(lambda n: f"Робототехника для начинающих {n}")
    direction = Direction.TECHNICAL
    level = Level.INTRODUCTORY
    age_min = 7
    age_max = 11
    total_hours = 72
    duration_months = 9
    study_form = StudyForm.FULL_TIME
    group_min = 8
    group_max = 15
    annotation = "Программа знакомит детей с основами конструирования."
    municipality = factory.LazyAttribute(lambda o: o.organization.municipality)
    created_by_id = factory.LazyAttribute(
        lambda o: ApplicantFactory(organization=o.organization).id
    )

    @factory.post_generation
    def review(self, create, extracted, **kwargs):
        review = Review(program=self, round=1)
        db.session.add(review)
        db.session.flush()
        self.current_review = review
        db.session.flush()


#: A small but well-formed PDF (one page with a line of text).
MINIMAL_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]/Contents 4 0 R"
    b"/Resources<</Font<</F1 5 0 R>>>>>>endobj\n"
    b"4 0 obj<</Length 44>>stream\nBT /F1 12 Tf 20 100 Td (Program text) Tj ET\nendstream endobj\n"
    b"5 0 obj<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


def attach_document(program, content: bytes = MINIMAL_PDF, name: str = "program.pdf", kind=None):
    """Put a file into the program's working set directly (bypassing the upload checks)."""
    from review_portal import storage
    from review_portal.enums import DocumentKind
    from review_portal.programs.models import ProgramDocument, StoredFile

    sha256, size = storage.save_bytes(content)
    stored = db.session.execute(
        sa.select(StoredFile).where(StoredFile.sha256 == sha256)
    ).scalar_one_or_none()
    if stored is None:
        stored = StoredFile(sha256=sha256, size=size, media_type="application/pdf")
        db.session.add(stored)
        db.session.flush()
    document = ProgramDocument(
        program=program,
        kind=kind or DocumentKind.PROGRAM,
        original_name=name,
        file=stored,
        uploaded_by_id=program.created_by_id,
    )
    db.session.add(document)
    db.session.flush()
    return document


def program_in_review(coordinator=None, **program_fields):
    """A program submitted and accepted into expertise (its review needs experts)."""
    from review_portal.programs.services import accept_submission, submit_program

    program = ProgramFactory(**program_fields)
    attach_document(program)
    submit_program(program, ApplicantFactory(organization=program.organization))
    accept_submission(program, coordinator or CoordinatorFactory())
    return program


def expert(directions=(Direction.TECHNICAL,), municipality=None, capacity=5, **user_fields):
    """An approved expert with a profile (directions, municipality, capacity)."""
    user = UserFactory(roles=[Role.EXPERT], **user_fields)
    ExpertProfileFactory(
        user=user,
        directions=list(directions),
        capacity=capacity,
        **({"municipality": municipality} if municipality is not None else {}),
    )
    return user


#: Criteria of the default rubric in sheet order (A1, A2, B1 ... D3).
DEFAULT_CRITERIA = ("A1", "A2", "B1", "B2", "B3", "B4", "C1", "D1", "D2", "D3")


def points(*values: int) -> dict[str, int]:
    """``{criterion: score}`` of the default rubric from ten values in sheet order; fewer
    values are padded with the last one (``points(2)`` scores everything 2)."""
    values = list(values) + [values[-1]] * (len(DEFAULT_CRITERIA) - len(values))
    return dict(zip(DEFAULT_CRITERIA, values, strict=True))


def with_total(total: int) -> dict[str, int]:
    """Scores of the default rubric (0–2, weight 1) adding up to ``total`` (0..20), the
    blocking criteria A1, A2 scored first so they pass whenever the total allows."""
    values = []
    left = total
    for _ in DEFAULT_CRITERIA:
        value = min(2, left)
        values.append(value)
        left -= value
    return dict(zip(DEFAULT_CRITERIA, values, strict=True))


def add_assignment(review, user, seat, *, role=None, status=None):
    """An accepted assignment of ``user`` on ``review`` (no solver, no notifications)."""
    from datetime import date, timedelta

    from review_portal.assignment.models import Assignment
    from review_portal.enums import AssignmentRole, AssignmentStatus

    assignment = Assignment(
        review_id=review.id,
        expert_id=user.id,
        seat=seat,
        role=role or AssignmentRole.INITIAL,
        due_on=date.today() + timedelta(days=10),
        status=status or AssignmentStatus.ACCEPTED,
    )
    db.session.add(assignment)
    db.session.flush()
    return assignment


def save_scores(assignment, scores: dict, comments: dict | None = None, recommendations=None):
    """Save the assignment's whole sheet as a draft, ready to submit, through the scoring
    services (a comment is written for every score that needs one unless ``comments``
    gives it)."""
    from review_portal.scoring.services import SheetInput, save_sheet

    comments = dict(comments or {})
    for criterion, value in scores.items():
        if value is not None and value < 2:
            comments.setdefault(criterion, f"Замечание по критерию {criterion}.")
    sheet = assignment.sheet
    return save_sheet(
        assignment,
        assignment.expert,
        SheetInput(
            revision=sheet.revision if sheet is not None else 0,
            scores=dict(scores),
            comments=comments,
            recommendations=recommendations or "Рекомендации эксперта по программе.",
            confirmed=True,
        ),
    )


def submit_scores(assignment, scores: dict, comments: dict | None = None, recommendations=None):
    """Save (:func:`save_scores`) and submit the assignment's sheet through the scoring
    services."""
    from review_portal.scoring.services import submit_sheet

    save_scores(assignment, scores, comments, recommendations)
    submit_sheet(assignment, assignment.expert)
    return assignment.sheet


def scored_review(*score_maps, program=None, submit=True, **program_fields):
    """A program in expertise whose experts (one per score map, seats 1..n) have submitted
    those scores. Returns ``(review, [assignments])``; the review has moved on by the
    reconciliation rules."""
    program = program or program_in_review(**program_fields)
    review = program.current_review
    assignments = []
    for seat in range(1, len(score_maps) + 1):
        user = expert(full_name=f"Эксперт-Тайный Номер{seat} Фамилия{review.id}")
        assignments.append(add_assignment(review, user, seat))
    if submit:
        for assignment, scores in zip(assignments, score_maps, strict=True):
            submit_scores(assignment, scores)
    return review, assignments


def cheap_conclusion(review, coordinator, percent: str = "85.00"):
    """An admitted conclusion of ``review`` written directly, with a fake file hash instead
    of a rendered PDF, and its registry entry (``enter_registry``, as issuing does).
    Returns ``(conclusion, entry)``."""
    import hashlib
    from decimal import Decimal

    from review_portal.conclusions.models import Conclusion
    from review_portal.conclusions.services import take_number
    from review_portal.enums import ConclusionStatus, Decision
    from review_portal.registry.services import enter_registry

    number, sequence = take_number(utcnow().year)
    fake = hashlib.sha256(number.encode()).hexdigest()
    conclusion = Conclusion(
        review=review,
        number=number,
        year=int(number.rsplit("-", 2)[1]),
        sequence=sequence,
        issued_by_id=coordinator.id,
        decision=Decision.ADMITTED,
        total=Decimal(percent),
        max_total=Decimal(100),
        percent=Decimal(percent),
        storage_key=fake,
        sha256=fake,
        content_sha256=fake,
        size=1,
        status=ConclusionStatus.VALID,
    )
    db.session.add(conclusion)
    db.session.flush()
    entries = enter_registry(conclusion, coordinator)
    # The entry of the main kind (the first asked for), when it is admitted to it.
    return conclusion, entries[0] if entries else None


def admitted_program(percent: str = "85.00", coordinator=None, **program_fields):
    """A program admitted with a (cheap) conclusion and its pending registry entry.

    The review walks the state machine; the conclusion is :func:`cheap_conclusion`
    (registry tests need many of them, fast). Returns ``(program, conclusion, entry)``.
    """
    from review_portal.enums import Decision
    from review_portal.workflow import ReviewState, advance

    coordinator = coordinator or CoordinatorFactory()
    program = program_in_review(coordinator, **program_fields)
    review = program.current_review
    advance(review, ReviewState.AWAITING_DECISION, None)
    advance(review, ReviewState.ADMITTED, coordinator)
    review.decision = review.computed_decision = Decision.ADMITTED
    review.decided_at = utcnow()
    review.decided_by_id = coordinator.id
    conclusion, entry = cheap_conclusion(review, coordinator, percent)
    return program, conclusion, entry
