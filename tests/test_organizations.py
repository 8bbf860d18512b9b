"""Organizations: registration numbers by their control digits, the profile, invitations,
and one approved holder per ИНН."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from review_portal.accounts.models import User
from review_portal.enums import AccountStatus, OrganizationType, Role
from review_portal.errors import Forbidden
from review_portal.extensions import db
from review_portal.notifications.models import OutboxMessage
from review_portal.organizations.models import Invitation, Organization
from review_portal.organizations.services import registration_number_errors, transfer_inn
from review_portal.organizations.validators import is_valid_inn, is_valid_ogrn
from tests.factories import PASSWORD, ApplicantFactory, CoordinatorFactory, OrganizationFactory

# Real-shaped numbers: published registration numbers of well-known legal entities and the
# tax service's own examples for individuals.
VALID_INN_10 = ["7707083893", "7736207543", "7830002293"]
VALID_INN_12 = ["500100732259", "773370857141"]
VALID_OGRN = ["1027700132195", "1027700229193"]
VALID_OGRNIP = ["304500116000157"]


@pytest.mark.parametrize("inn", VALID_INN_10 + VALID_INN_12)
def test_valid_inn_passes(inn):
    assert is_valid_inn(inn)


@pytest.mark.parametrize(
    "inn",
    [
        "7707083894",  # last digit changed
        "7707038893",  # two digits swapped
        "500100732258",  # 12th digit changed
        "500100732269",  # 11th digit changed
        "770708389",  # too short
        "77070838930",  # 11 digits
        "77070838 93",
        "",
        "ИНН7707083893",
    ],
)
def test_invalid_inn_is_refused(inn):
    assert not is_valid_inn(inn)


@pytest.mark.parametrize("ogrn", VALID_OGRN + VALID_OGRNIP)
def test_valid_ogrn_passes(ogrn):
    assert is_valid_ogrn(ogrn)


@pytest.mark.parametrize(
    "ogrn", ["1027700132196", "304500116000158", "102770013219", "3045001160001570", "abc"]
)
def test_invalid_ogrn_is_refused(ogrn):
    assert not is_valid_ogrn(ogrn)


def test_entrepreneur_needs_twelve_digit_inn_and_fifteen_digit_ogrnip(app):
    with app.test_request_context():
        ip = OrganizationType.INDIVIDUAL_ENTREPRENEUR
        assert registration_number_errors(ip, VALID_INN_12[0], VALID_OGRNIP[0]) == {}
        errors = registration_number_errors(ip, VALID_INN_10[0], VALID_OGRN[0])
        assert set(errors) == {"inn", "ogrn"}
        organization = OrganizationType.PRIVATE
        assert registration_number_errors(organization, VALID_INN_10[0], VALID_OGRN[0]) == {}
        assert set(registration_number_errors(organization, VALID_INN_12[0], None)) == {"inn"}


@pytest.fixture(autouse=True)
def _english(english):
    pass


def test_provider_edits_the_profile_but_not_the_inn(client, auth, session):
    applicant = ApplicantFactory()
    organization = applicant.organization
    inn = organization.inn
    auth.login(applicant)
    response = auth.post(
        "/organization/edit",
        {
            "full_name": "МБУ ДО «Дом творчества»",
            "short_name": "Дом творчества",
            "ogrn": "",
            "municipality_id": str(organization.municipality_id),
            "address": "г. Смоленск, ул. Ленина, 1",
            "phone": "+7 4812 00-00-00",
            "email": "dom@example.org",
            "inn": "7707083893",
        },
    )
    assert response.status_code == 302
    db.session.refresh(organization)
    assert organization.short_name == "Дом творчества"
    assert organization.address == "г. Смоленск, ул. Ленина, 1"
    assert organization.inn == inn


def test_profile_refuses_a_wrong_ogrn_with_a_field_error(client, auth, session):
    applicant = ApplicantFactory()
    auth.login(applicant)
    response = auth.post(
        "/organization/edit",
        {
            "full_name": "Название",
            "short_name": "Название",
            "ogrn": "1027700132196",
            "municipality_id": str(applicant.organization.municipality_id),
        },
    )
    assert response.status_code == 200
    assert "control digit does not match" in response.get_data(as_text=True)
    db.session.refresh(applicant.organization)
    assert applicant.organization.short_name != "Название"


def test_invited_colleague_joins_the_organization_approved(client, auth, session):
    applicant = ApplicantFactory()
    auth.login(applicant)
    response = auth.post("/organization/invite", {"email": "Colleague@Example.org"})
    assert response.status_code == 302
    mail = db.session.execute(
        select(OutboxMessage).where(OutboxMessage.to_email == "colleague@example.org")
    ).scalar_one()
    path = re.search(r"https?://[^/]+(/invite/\S+)", mail.body).group(1)
    auth.logout()

    page = client.get(path).get_data(as_text=True)
    assert applicant.organization.short_name in page
    refused = auth.post(
        path,
        {"full_name": "Коллега", "password": PASSWORD, "password_confirm": PASSWORD},
        token_from=path,
    )
    assert refused.status_code == 200
    assert (
        db.session.execute(
            select(User).where(User.email == "colleague@example.org")
        ).scalar_one_or_none()
        is None
    )

    joined = auth.post(
        path,
        {
            "full_name": "Коллега Петрова",
            "password": PASSWORD,
            "password_confirm": PASSWORD,
            "consent": "y",
        },
        token_from=path,
    )
    assert joined.status_code == 302
    colleague = db.session.execute(
        select(User).where(User.email == "colleague@example.org")
    ).scalar_one()
    assert colleague.organization_id == applicant.organization_id
    assert colleague.status == AccountStatus.APPROVED and colleague.has_role(Role.APPLICANT)
    assert colleague.consent_at is not None
    auth.logout()
    assert client.get(path).status_code == 302  # used: the link no longer works
    assert db.session.execute(select(Invitation)).scalar_one().accepted_at is not None


def test_invitation_is_refused_for_an_existing_account(client, auth, session):
    applicant = ApplicantFactory()
    other = CoordinatorFactory()
    auth.login(applicant)
    response = auth.post("/organization/invite", {"email": other.email})
    assert response.status_code == 400
    assert "already exists" in response.get_data(as_text=True)
    assert db.session.execute(select(Invitation)).first() is None


def test_pending_organization_cannot_invite(client, auth, session):
    applicant = ApplicantFactory(organization=OrganizationFactory(status=AccountStatus.PENDING))
    auth.login(applicant)
    response = auth.post("/organization/invite", {"email": "x@example.org"})
    assert response.status_code == 400
    assert db.session.execute(select(Invitation)).first() is None


def test_another_organization_profile_is_closed_to_applicants(client, auth, session):
    applicant = ApplicantFactory()
    other = OrganizationFactory()
    auth.login(applicant)
    assert client.get(f"/organizations/{other.id}").status_code == 403
    assert client.get(f"/organizations/{applicant.organization_id}").status_code == 200
    assert client.get("/organizations").status_code == 403


# --- ИНН claims: one approved holder per ИНН ---------------------------------------------


def test_one_approved_holder_per_inn_is_enforced_by_the_database(session, backend):
    """Pending and rejected organizations may share an ИНН with its holder; a second
    approved one is refused by the partial unique index, on PostgreSQL and SQLite alike."""
    holder = OrganizationFactory()
    claim = OrganizationFactory(inn=holder.inn, status=AccountStatus.PENDING)
    OrganizationFactory(inn=holder.inn, status=AccountStatus.REJECTED)
    session.flush()

    with pytest.raises(IntegrityError) as inserted, session.begin_nested():
        OrganizationFactory(inn=holder.inn, status=AccountStatus.APPROVED)
    with pytest.raises(IntegrityError), session.begin_nested():
        claim.status = AccountStatus.APPROVED
        session.flush()
    session.refresh(claim)

    assert claim.status == AccountStatus.PENDING
    approved = select(func.count()).where(
        Organization.inn == holder.inn, Organization.status == AccountStatus.APPROVED
    )
    assert session.execute(approved).scalar_one() == 1
    names = {"postgresql": "uq_organizations_inn_holder", "sqlite": "organizations.inn"}
    assert names[backend] in str(inserted.value)


def test_organization_that_lost_its_inn_takes_no_new_members(client, auth, session):
    applicant = ApplicantFactory()
    previous = applicant.organization
    auth.login(applicant)
    auth.post("/organization/invite", {"email": "colleague@example.org"})
    mail = db.session.execute(
        select(OutboxMessage).where(OutboxMessage.to_email == "colleague@example.org")
    ).scalar_one()
    path = re.search(r"https?://[^/]+(/invite/\S+)", mail.body).group(1)
    auth.logout()
    successor = OrganizationFactory(inn=previous.inn, status=AccountStatus.PENDING)
    transfer_inn(previous, successor, CoordinatorFactory(), "Выписка из ЕГРЮЛ")
    session.commit()

    page = client.get(path)
    joined = auth.post(
        path,
        {
            "full_name": "Коллега",
            "password": PASSWORD,
            "password_confirm": PASSWORD,
            "consent": "y",
        },
        token_from="/",
    )

    assert page.status_code == 302
    assert joined.status_code == 302
    assert (
        db.session.execute(
            select(User).where(User.email == "colleague@example.org")
        ).scalar_one_or_none()
        is None
    )
    auth.login(applicant)
    assert client.get("/organization").status_code == 200
    assert auth.post("/organization/invite", {"email": "other@example.org"}).status_code == 403


def test_transfer_of_an_inn_is_for_the_center_only(session):
    applicant = ApplicantFactory()
    successor = OrganizationFactory(inn=applicant.organization.inn, status=AccountStatus.PENDING)

    with pytest.raises(Forbidden):
        transfer_inn(applicant.organization, successor, applicant, "Моя организация")

    assert applicant.organization.status == AccountStatus.APPROVED
    assert applicant.organization.inn_lost_at is None
