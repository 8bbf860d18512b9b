"""The administrator's management of users and roles."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from review_portal.accounts.models import User
from review_portal.audit.models import AuditEvent
from review_portal.enums import AccountStatus, Role
from review_portal.extensions import db
from review_portal.notifications.models import OutboxMessage
from tests.factories import (
    AdminFactory,
    ApplicantFactory,
    CoordinatorFactory,
    MunicipalityFactory,
    OrganizationFactory,
)


@pytest.fixture(autouse=True)
def _english(english):
    pass


def user_by_email(email: str) -> User | None:
    return db.session.execute(select(User).where(User.email == email)).scalar_one_or_none()


def test_admin_creates_a_coordinator_who_gets_a_link_to_set_a_password(client, auth, session):
    auth.login(AdminFactory())
    response = auth.post(
        "/admin/users/new",
        {"full_name": "Иванова Мария Петровна", "email": "Ivanova@RMC.ru", "roles": "coordinator"},
    )
    assert response.status_code == 302
    user = user_by_email("ivanova@rmc.ru")
    assert user.roles == {Role.COORDINATOR}
    assert user.status == AccountStatus.APPROVED
    mail = db.session.execute(
        select(OutboxMessage).where(OutboxMessage.to_email == "ivanova@rmc.ru")
    ).scalar_one()
    assert "/password/reset/" in mail.body
    event = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "account.create")
    ).scalar_one()
    assert event.after["roles"] == ["coordinator"]


def test_municipal_viewer_needs_a_municipality(client, auth, session):
    auth.login(AdminFactory())
    response = auth.post(
        "/admin/users/new",
        {"full_name": "Петров", "email": "moc@example.org", "roles": "municipal"},
    )
    assert response.status_code == 200
    assert "municipal viewer needs a municipality" in response.get_data(as_text=True)
    assert user_by_email("moc@example.org") is None


def test_provider_user_is_bound_to_an_organization_by_inn(client, auth, session):
    organization = OrganizationFactory()
    auth.login(AdminFactory())
    unknown = auth.post(
        "/admin/users/new",
        {
            "full_name": "Сидоров",
            "email": "s@example.org",
            "roles": "applicant",
            "organization_inn": "0000000000",
        },
    )
    assert "No organization with this INN" in unknown.get_data(as_text=True)
    assert user_by_email("s@example.org") is None
    auth.post(
        "/admin/users/new",
        {
            "full_name": "Сидоров",
            "email": "s@example.org",
            "roles": "applicant",
            "organization_inn": organization.inn,
        },
    )
    assert user_by_email("s@example.org").organization_id == organization.id


def test_admin_changes_roles_and_switches_an_account_off(client, auth, session):
    municipality = MunicipalityFactory()
    target = CoordinatorFactory()
    auth.login(AdminFactory())
    response = auth.post(
        f"/admin/users/{target.id}",
        {
            "full_name": target.full_name,
            "roles": ["coordinator", "municipal"],
            "municipality_id": str(municipality.id),
        },
    )
    assert response.status_code == 302
    db.session.refresh(target)
    assert target.roles == {Role.COORDINATOR, Role.MUNICIPAL}
    assert target.municipality_id == municipality.id
    assert target.active is False  # the checkbox was not sent
    event = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "account.update")
    ).scalar_one()
    assert event.before["active"] is True and event.after["active"] is False
    assert event.after["roles"] == ["coordinator", "municipal"]


def test_switched_off_account_cannot_log_in(client, auth, session):
    target = ApplicantFactory(active=False)
    response = auth.login(target)
    assert response.status_code == 200
    assert client.get("/provider").status_code == 302


def test_admin_cannot_remove_own_admin_role(client, auth, session):
    admin = AdminFactory()
    auth.login(admin)
    response = auth.post(
        f"/admin/users/{admin.id}",
        {"full_name": admin.full_name, "roles": "coordinator", "active": "y"},
    )
    assert response.status_code == 200
    assert "cannot remove your own administrator role" in response.get_data(as_text=True)
    db.session.refresh(admin)
    assert admin.roles == {Role.ADMIN}


def test_user_list_filters_by_role_and_text(client, auth, session):
    CoordinatorFactory(full_name="Координатор Орлова")
    ApplicantFactory(full_name="Заявитель Волков")
    auth.login(AdminFactory())
    page = client.get("/admin/users/?role=coordinator").get_data(as_text=True)
    assert "Координатор Орлова" in page and "Заявитель Волков" not in page
    page = client.get("/admin/users/?q=волков").get_data(as_text=True)
    assert "Заявитель Волков" in page and "Координатор Орлова" not in page


def test_coordinator_cannot_manage_users(client, auth, session):
    auth.login(CoordinatorFactory())
    assert client.get("/admin/users/").status_code == 403


def test_editing_a_user_keeps_their_organization_among_others_with_the_same_inn(
    client, auth, session
):
    """Several organizations may name one ИНН (a claim, one that lost it): saving a user's
    form unchanged never moves them to the organization that holds the ИНН now."""
    member = ApplicantFactory()
    previous = member.organization
    holder = OrganizationFactory(inn=previous.inn, status=AccountStatus.PENDING)
    previous.status = AccountStatus.REJECTED
    holder.status = AccountStatus.APPROVED
    session.commit()
    auth.login(AdminFactory())

    response = auth.post(
        f"/admin/users/{member.id}",
        {
            "full_name": "Новое Имя",
            "roles": ["applicant"],
            "active": "y",
            "organization_inn": previous.inn,
        },
    )

    assert response.status_code == 302
    db.session.refresh(member)
    assert member.full_name == "Новое Имя"
    assert member.organization_id == previous.id
