"""Accounts: logging in and out, registration, approval by a coordinator, password change
and reset, and the access rules around them — walked as users make them. (Throttling:
tests/test_throttle.py.)"""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from review_portal.accounts.models import PasswordResetToken, User
from review_portal.accounts.services import CONSENT_VERSION
from review_portal.audit.models import AuditEvent
from review_portal.db import utcnow
from review_portal.enums import AccountStatus, Direction, OrganizationType, Role
from review_portal.experts.models import ExpertProfile
from review_portal.notifications.models import OutboxMessage
from review_portal.organizations.models import Organization
from tests import factories
from tests.conftest import Auth, csrf_from

NEW_PASSWORD = "Brand-new-pass-7"
GENERIC_LOGIN_ERROR = "Wrong e-mail or password."


# --- fixtures and helpers -------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _english(client):
    """Pin the interface to English: assertions on text hold whether or not the Russian
    catalogue is compiled."""
    english(client)


def english(client):
    with client.session_transaction() as browser_session:
        browser_session["locale"] = "en"
    return client


def new_auth(app) -> Auth:
    """Another browser: its own cookies, in English."""
    return Auth(english(app.test_client()))


def path_of(response) -> str:
    """The path (and query) a redirect points to."""
    parts = urlsplit(response.headers["Location"])
    return parts.path + (f"?{parts.query}" if parts.query else "")


def text(response) -> str:
    return response.get_data(as_text=True)


def field_error(response, field_id: str) -> str | None:
    """The error text shown next to a form field (the ``<id>-error`` element), if any."""
    match = re.search(rf'id="{re.escape(field_id)}-error"[^>]*>([^<]*)<', text(response))
    return match.group(1).strip() if match else None


CSRF_VALUE = re.compile(r'(name="csrf_token"[^>]*value=")[^"]+(")')


def without_csrf(html: str) -> str:
    return CSRF_VALUE.sub(r"\1CSRF\2", html)


def logged_in_as(client) -> str | None:
    """The name of the user this client's session belongs to (``None`` when anonymous).

    Reads a page that needs a login; it shows no flashed messages of its own to consume.
    """
    page = text(client.get("/password"))
    if "Change password" not in page:
        return None
    match = re.search(r'<a class="navbar-text[^"]*"[^>]*>([^<]*)</a>', page)
    return match.group(1) if match else None


def count(session, model, *conditions) -> int:
    return session.execute(select(func.count()).select_from(model).where(*conditions)).scalar()


def audit_events(session, action: str, object_id) -> list[AuditEvent]:
    return list(
        session.execute(
            select(AuditEvent).where(
                AuditEvent.action == action, AuditEvent.object_id == str(object_id)
            )
        ).scalars()
    )


def outbox_to(session, email: str) -> list[OutboxMessage]:
    """The messages queued for ``email``, oldest first."""
    return list(
        session.execute(
            select(OutboxMessage).where(OutboxMessage.to_email == email).order_by(OutboxMessage.id)
        ).scalars()
    )


def broken_inn(inn: str) -> str:
    """``inn`` with its last control digit changed."""
    return inn[:-1] + str((int(inn[-1]) + 1) % 10)


def pending_applicant(session, **kwargs) -> User:
    organization = factories.OrganizationFactory(
        status=AccountStatus.PENDING, **kwargs.pop("organization_kwargs", {})
    )
    return factories.ApplicantFactory(
        status=AccountStatus.PENDING, organization=organization, **kwargs
    )


def pending_expert(session, **kwargs) -> User:
    profile_kwargs = kwargs.pop("profile_kwargs", {})
    kwargs.setdefault("status", AccountStatus.PENDING)
    user = factories.UserFactory(roles=[Role.EXPERT], **kwargs)
    factories.ExpertProfileFactory(user=user, **profile_kwargs)
    return user


@pytest.fixture
def municipality(session):
    municipality = factories.MunicipalityFactory(name="город Смоленск")
    session.commit()
    return municipality


@pytest.fixture
def coordinator(session):
    user = factories.CoordinatorFactory(full_name="Координатор РМЦ")
    session.commit()
    return user


def provider_form(municipality, **overrides) -> dict:
    data = {
        "org_kind": OrganizationType.MUNICIPAL.value,
        "org_full_name": "Муниципальное бюджетное учреждение дополнительного образования "
        "«Дом детского творчества»",
        "org_short_name": "МБУ ДО «ДДТ»",
        "inn": factories.make_inn(10),
        "ogrn": "",
        "municipality_id": str(municipality.id),
        "address": "г. Смоленск, ул. Ленина, д. 1",
        "full_name": "Иванова Мария Петровна",
        "email": "director@ddt.example.org",
        "phone": "+7 4812 00-00-00",
        "password": "Str0ng-password",
        "password_confirm": "Str0ng-password",
        "consent": "y",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def expert_form(municipality, **overrides) -> dict:
    data = {
        "full_name": "Петров Сергей Иванович",
        "email": "petrov@school.example.org",
        "phone": "",
        "password": "Str0ng-password",
        "password_confirm": "Str0ng-password",
        "municipality_id": str(municipality.id),
        "home_organization_name": "МБОУ «Средняя школа № 7»",
        "home_organization_inn": "",
        "position": "Методист",
        "directions": [Direction.TECHNICAL.value, Direction.ARTS.value],
        "qualification": "Педагог дополнительного образования высшей категории, стаж 15 лет",
        "experience_years": "15",
        "capacity": "4",
        "consent": "y",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


# --- logging in -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make_user", "home"),
    [
        (factories.ApplicantFactory, "/provider"),
        (factories.ExpertUserFactory, "/expert"),
        (factories.CoordinatorFactory, "/coordinator"),
        (factories.AdminFactory, "/coordinator"),
        (factories.MunicipalViewerFactory, "/municipal"),
        (lambda: factories.ApplicantFactory(status=AccountStatus.PENDING), "/pending"),
        (lambda: factories.ExpertUserFactory(status=AccountStatus.PENDING), "/pending"),
    ],
    ids=["applicant", "expert", "coordinator", "admin", "municipal", "pending", "pending-expert"],
)
def test_login_success_lands_on_role_home(session, client, auth, make_user, home):
    user = make_user()
    session.commit()

    response = auth.login(user)

    assert response.status_code == 302
    assert path_of(response) == home
    landing = client.get(home)
    assert landing.status_code == 200
    assert user.full_name in text(landing)
    session.refresh(user)
    assert user.last_login_at is not None
    assert len(audit_events(session, "account.login", user.id)) == 1


def test_login_email_is_case_insensitive(session, client, auth):
    user = factories.ApplicantFactory(email="director@ddt.example.org")
    session.commit()

    response = auth.login("  Director@DDT.Example.org ")

    assert path_of(response) == "/provider"
    assert logged_in_as(client) == user.full_name


def test_login_wrong_password_and_unknown_email_look_the_same(session, client, auth):
    user = factories.ApplicantFactory(email="known@example.org")
    session.commit()

    wrong_password = auth.login("known@example.org", "Wrong-password-1")
    unknown_email = auth.login("nobody@example.org", "Wrong-password-1")

    assert wrong_password.status_code == unknown_email.status_code == 200
    assert GENERIC_LOGIN_ERROR in text(wrong_password)
    bodies = [
        without_csrf(text(wrong_password)).replace("known@example.org", "EMAIL"),
        without_csrf(text(unknown_email)).replace("nobody@example.org", "EMAIL"),
    ]
    assert bodies[0] == bodies[1]
    assert logged_in_as(client) is None
    session.refresh(user)
    assert user.last_login_at is None
    assert len(audit_events(session, "account.login_failed", user.id)) == 1


def test_login_disabled_account_fails_like_wrong_password(session, client, auth):
    user = factories.ApplicantFactory(active=False)
    session.commit()

    response = auth.login(user)

    assert response.status_code == 200
    assert GENERIC_LOGIN_ERROR in text(response)
    assert logged_in_as(client) is None


def test_login_without_csrf_token_is_rejected_and_changes_nothing(session, client):
    user = factories.ApplicantFactory()
    session.commit()
    events_before = count(session, AuditEvent)

    response = client.post("/login", data={"email": user.email, "password": factories.PASSWORD})

    assert response.status_code == 400
    assert "security token" in text(response)
    assert logged_in_as(client) is None
    assert count(session, AuditEvent) == events_before
    session.refresh(user)
    assert user.last_login_at is None


def test_login_page_is_russian_by_default(app, session):
    response = app.test_client().get("/login")

    assert response.status_code == 200
    assert '<html lang="ru">' in text(response)
    assert 'name="email"' in text(response)
    assert 'name="password"' in text(response)
    assert 'name="csrf_token"' in text(response)


def test_login_when_already_logged_in_redirects_home(session, client, auth):
    user = factories.ExpertUserFactory()
    session.commit()
    auth.login(user)

    response = client.get("/login")

    assert response.status_code == 302
    assert path_of(response) == "/expert"


# --- remember me and logging out ------------------------------------------------------------


def test_login_remember_me_sets_cookie_that_restores_the_session(session, client, auth, app):
    user = factories.ApplicantFactory()
    session.commit()

    auth.login(user, remember=True)

    cookie = client.get_cookie("remember_token")
    assert cookie is not None and cookie.value.startswith(f"{user.id}:")
    fresh = english(app.test_client())
    fresh.set_cookie("remember_token", cookie.value)
    assert fresh.get("/provider").status_code == 200
    assert logged_in_as(fresh) == user.full_name


def test_login_without_remember_me_sets_no_cookie(session, client, auth):
    user = factories.ApplicantFactory()
    session.commit()

    auth.login(user)

    assert client.get_cookie("remember_token") is None


def test_logout_post_ends_the_session(session, client, auth):
    user = factories.ApplicantFactory()
    session.commit()
    auth.login(user, remember=True)

    response = auth.post("/logout", token_from="/provider")

    assert response.status_code == 302
    assert path_of(response) == "/"
    assert client.get_cookie("remember_token") is None
    denied = client.get("/provider")
    assert denied.status_code == 302
    assert path_of(denied) == "/login?next=%2Fprovider"


def test_logout_get_is_not_allowed(session, client, auth):
    user = factories.ApplicantFactory()
    session.commit()
    auth.login(user)

    response = client.get("/logout")

    assert response.status_code == 405
    assert logged_in_as(client) == user.full_name


def test_logout_without_csrf_token_keeps_the_session(session, client, auth):
    user = factories.ApplicantFactory()
    session.commit()
    auth.login(user)

    response = client.post("/logout")

    assert response.status_code == 400
    assert logged_in_as(client) == user.full_name


def test_login_session_ends_when_account_is_switched_off(session, client, auth):
    user = factories.ApplicantFactory()
    session.commit()
    auth.login(user, remember=True)

    user.active = False
    session.commit()

    response = client.get("/provider")
    assert response.status_code == 302
    assert path_of(response) == "/login?next=%2Fprovider"
    assert logged_in_as(client) is None


def test_pending_page_approved_account_without_role_does_not_loop(session, client, auth):
    user = factories.UserFactory(roles=[])
    session.commit()

    assert path_of(auth.login(user)) == "/pending"
    response = client.get("/pending")

    assert response.status_code == 200
    assert "Your account is approved but has no role yet." in text(response)
    assert path_of(client.get("/")) == "/pending"


def test_pending_page_approved_user_goes_home(session, client, auth):
    user = factories.ExpertUserFactory()
    session.commit()
    auth.login(user)

    response = client.get("/pending")

    assert response.status_code == 302
    assert path_of(response) == "/expert"


# --- access rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make_user", "path"),
    [
        (factories.ApplicantFactory, "/coordinator"),
        (factories.ApplicantFactory, "/registrations"),
        (factories.ApplicantFactory, "/expert"),
        (factories.ExpertUserFactory, "/coordinator"),
        (factories.ExpertUserFactory, "/provider"),
        (factories.MunicipalViewerFactory, "/registrations"),
        (factories.CoordinatorFactory, "/provider"),
    ],
    ids=[
        "applicant-coordinator",
        "applicant-registrations",
        "applicant-expert",
        "expert-coordinator",
        "expert-provider",
        "municipal-registrations",
        "coordinator-provider",
    ],
)
def test_role_page_of_another_role_is_forbidden(session, client, auth, make_user, path):
    user = make_user()
    session.commit()
    auth.login(user)

    response = client.get(path)

    assert response.status_code == 403
    assert "You do not have permission to open this page." in text(response)


@pytest.mark.parametrize(
    ("make_user", "path", "explanation", "heading"),
    [
        (
            lambda: factories.ApplicantFactory(status=AccountStatus.PENDING),
            "/provider",
            "This page opens once the regional model center approves your registration.",
            "Your registration is awaiting approval",
        ),
        (
            lambda: factories.ApplicantFactory(status=AccountStatus.PENDING),
            "/programs/new",
            "This page opens once the regional model center approves your registration.",
            "Your registration is awaiting approval",
        ),
        (
            lambda: factories.CoordinatorFactory(status=AccountStatus.PENDING),
            "/coordinator",
            "This page opens once the regional model center approves your registration.",
            "Your registration is awaiting approval",
        ),
        (
            lambda: factories.UserFactory(roles=[]),
            "/coordinator",
            "This page opens once the regional model center gives your account a role.",
            "Your account has no role yet",
        ),
    ],
    ids=["provider-home", "provider-new-program", "coordinator", "no-role"],
)
def test_a_page_refused_while_awaiting_approval_says_why(
    session, client, auth, make_user, path, explanation, heading
):
    """Not a bare "access denied": the refusal (still 403) explains what the account waits
    for, as its own page does."""
    user = make_user()
    session.commit()
    auth.login(user)

    response = client.get(path)

    assert response.status_code == 403
    page = text(response)
    assert re.search(r'id="pending-refused">\s*' + re.escape(explanation), page)
    assert f"<h1>{heading}</h1>" in page
    assert "You do not have permission to open this page." not in page


def test_an_approved_user_refused_gets_the_error_page(session, client, auth):
    user = factories.ApplicantFactory()
    session.commit()
    auth.login(user)

    response = client.get("/coordinator")

    assert response.status_code == 403
    assert 'id="pending-refused"' not in text(response)


def test_registration_unknown_id_is_not_found(session, client, auth, coordinator):
    auth.login(coordinator)

    response = client.get("/registrations/999999")

    assert response.status_code == 404
    assert "There is no such page or object." in text(response)


@pytest.mark.parametrize("path", ["/coordinator", "/registrations", "/password", "/provider"])
def test_protected_page_anonymous_redirects_to_login_with_next(session, client, path):
    response = client.get(path)

    assert response.status_code == 302
    assert path_of(response) == f"/login?next=%2F{path[1:]}"


def test_login_next_leads_back_to_the_page_asked_for(session, client, auth, coordinator):
    target = path_of(client.get("/registrations"))
    token = csrf_from(text(client.get(target)))

    response = client.post(
        target,
        data={"email": coordinator.email, "password": factories.PASSWORD, "csrf_token": token},
    )

    assert path_of(response) == "/registrations"


@pytest.mark.parametrize(
    "next_url",
    [
        "https://evil.example",
        "https://evil.example/provider",
        "//evil.example/provider",
        "/\\evil.example",
        "javascript:alert(1)",
    ],
)
def test_login_next_to_another_site_goes_home(session, client, next_url):
    user = factories.ApplicantFactory()
    session.commit()
    query = f"/login?next={next_url}"
    token = csrf_from(text(client.get(query)))

    response = client.post(
        query, data={"email": user.email, "password": factories.PASSWORD, "csrf_token": token}
    )

    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.netloc in ("", "localhost")
    assert location.path == "/provider"
    assert "evil" not in response.headers["Location"]


# --- registration ---------------------------------------------------------------------------


def test_register_provider_creates_pending_organization_and_user(
    session, client, auth, municipality
):
    data = provider_form(municipality, email="Director@DDT.example.org", ogrn="1026700000007")

    response = auth.post("/register/provider", data, token_from="/register/provider")

    assert response.status_code == 302
    assert path_of(response) == "/pending"
    user = session.execute(
        select(User).where(User.email == "director@ddt.example.org")
    ).scalar_one()
    assert user.status == AccountStatus.PENDING
    assert user.roles == {Role.APPLICANT}
    assert user.full_name == "Иванова Мария Петровна"
    assert user.consent_at is not None
    assert utcnow() - user.consent_at < timedelta(minutes=5)
    assert user.consent_version == CONSENT_VERSION
    organization = user.organization
    assert organization.inn == data["inn"]
    assert organization.ogrn == "1026700000007"
    assert organization.status == AccountStatus.PENDING
    assert organization.kind == OrganizationType.MUNICIPAL
    assert organization.municipality_id == municipality.id
    assert organization.short_name == "МБУ ДО «ДДТ»"
    assert len(audit_events(session, "account.register_provider", user.id)) == 1
    # The new user is logged in and sees that the registration awaits approval.
    pending = client.get("/pending")
    assert pending.status_code == 200
    assert "Your registration is awaiting approval" in text(pending)
    assert logged_in_as(client) == "Иванова Мария Петровна"
    assert client.get("/provider").status_code == 403


def test_register_provider_invalid_inn_control_digits_is_a_field_error(
    session, client, auth, municipality
):
    data = provider_form(municipality, inn=broken_inn(factories.make_inn(10)))

    response = auth.post("/register/provider", data, token_from="/register/provider")

    assert response.status_code == 200
    assert field_error(response, "inn") == "The INN control digits do not match: check the number."
    assert count(session, User) == 0
    assert count(session, Organization) == 0


def test_register_provider_individual_entrepreneur_needs_12_digit_inn(
    session, client, auth, municipality
):
    kind = OrganizationType.INDIVIDUAL_ENTREPRENEUR.value
    data = provider_form(municipality, org_kind=kind, inn=factories.make_inn(10))

    response = auth.post("/register/provider", data, token_from="/register/provider")

    assert response.status_code == 200
    assert field_error(response, "inn") == "The INN must have 12 digits for this type of provider."
    assert count(session, Organization) == 0

    data = provider_form(municipality, org_kind=kind, inn=factories.make_inn(12))
    response = auth.post("/register/provider", data, token_from="/register/provider")

    assert path_of(response) == "/pending"
    organization = session.execute(select(Organization)).scalar_one()
    assert organization.kind == OrganizationType.INDIVIDUAL_ENTREPRENEUR
    assert organization.inn == data["inn"]


def test_register_provider_organization_needs_10_digit_inn(session, client, auth, municipality):
    data = provider_form(municipality, inn=factories.make_inn(12))

    response = auth.post("/register/provider", data, token_from="/register/provider")

    assert response.status_code == 200
    assert field_error(response, "inn") == "The INN must have 10 digits for this type of provider."
    assert count(session, Organization) == 0


def test_register_provider_without_consent_creates_nothing(session, client, auth, municipality):
    data = provider_form(municipality, consent=None)

    response = auth.post("/register/provider", data, token_from="/register/provider")

    assert response.status_code == 200
    assert field_error(response, "consent") == "Consent is required to register."
    assert count(session, User) == 0
    assert count(session, Organization) == 0
    assert logged_in_as(client) is None


def test_register_provider_weak_password_and_mismatch_are_field_errors(
    session, client, auth, municipality
):
    data = provider_form(municipality, password="short", password_confirm="different")

    response = auth.post("/register/provider", data, token_from="/register/provider")

    assert response.status_code == 200
    assert field_error(response, "password") == "The password must be at least 10 characters long."
    assert field_error(response, "password_confirm") == "The passwords do not match."
    assert count(session, User) == 0


def test_register_provider_email_taken_in_other_case_is_a_field_error(
    session, client, auth, municipality
):
    factories.ApplicantFactory(email="user@example.org")
    session.commit()
    users_before = count(session, User)
    data = provider_form(municipality, email="User@Example.org")

    response = auth.post("/register/provider", data, token_from="/register/provider")

    assert response.status_code == 200
    assert field_error(response, "email") == "An account with this e-mail already exists."
    assert count(session, User) == users_before
    assert count(session, Organization, Organization.inn == data["inn"]) == 0


def test_register_provider_inn_of_a_rejected_registration_is_free_at_once(
    session, client, auth, coordinator, app, municipality
):
    """A squatter's rejected registration keeps no hold on the real organization's ИНН."""
    inn = factories.make_inn(10)
    squatter = new_auth(app)
    squatter.post(
        "/register/provider",
        provider_form(municipality, inn=inn, email="squatter@example.org"),
        token_from="/register/provider",
    )
    squatter_user = session.execute(
        select(User).where(User.email == "squatter@example.org")
    ).scalar_one()
    auth.login(coordinator)
    rejected = auth.post(
        f"/registrations/{squatter_user.id}/reject",
        {"reason": "ИНН принадлежит другой организации"},
        token_from=f"/registrations/{squatter_user.id}",
    )
    assert path_of(rejected) == "/registrations"
    real = new_auth(app)

    response = real.post(
        "/register/provider",
        provider_form(municipality, inn=inn, email="director@real.example.org"),
        token_from="/register/provider",
    )

    assert response.status_code == 302
    assert path_of(response) == "/pending"
    rows = session.execute(
        select(Organization.status).where(Organization.inn == inn).order_by(Organization.id)
    ).scalars()
    assert list(rows) == [AccountStatus.REJECTED, AccountStatus.PENDING]
    # A rejected registration claims nothing: no notice about another organization.
    pending = text(real.client.get("/pending"))
    assert "Your registration is awaiting approval" in pending
    assert "already registered" not in pending


def test_register_provider_inn_already_registered_is_accepted_as_a_claim(
    session, client, auth, municipality
):
    holder = factories.ApplicantFactory(
        email="head@real-school.example.org", full_name="Настоящий Руководитель"
    )
    session.commit()
    data = provider_form(municipality, inn=holder.organization.inn, email="claim@example.org")

    response = auth.post("/register/provider", data, token_from="/register/provider")

    assert response.status_code == 302
    assert path_of(response) == "/pending"
    claimant = session.execute(select(User).where(User.email == "claim@example.org")).scalar_one()
    assert claimant.status == AccountStatus.PENDING
    assert claimant.organization.status == AccountStatus.PENDING
    assert claimant.organization.inn == holder.organization.inn
    assert count(session, Organization, Organization.inn == holder.organization.inn) == 2
    session.refresh(holder.organization)
    assert holder.organization.status == AccountStatus.APPROVED
    [event] = audit_events(session, "organization.create", claimant.organization_id)
    assert event.after["inn_also_named_by"] == [holder.organization_id]
    # The applicant is told how the claim is checked, and nothing about the other one.
    pending = text(client.get("/pending"))
    assert "will be checked by the regional model center" in pending
    assert "letterhead signed by its head" in pending
    assert "Unified State Register of Legal Entities" in pending
    for detail in (holder.email, holder.full_name, holder.organization.short_name):
        assert detail not in pending
    with client.session_transaction() as browser_session:
        browser_session["locale"] = "ru"
    russian = text(client.get("/pending"))
    assert "Ваша заявка принята и будет проверена региональным модельным центром" in russian
    assert "письмо на бланке организации за подписью руководителя" in russian
    assert "выписку из ЕГРЮЛ" in russian
    assert holder.email not in russian


def test_register_provider_page_says_how_to_claim_a_taken_inn(client):
    page = text(client.get("/register/provider"))

    assert "has already been registered on the portal by someone else, register anyway" in page
    assert "may ask for proof that you act for the organization" in page


def test_register_expert_creates_pending_user_with_profile(session, client, auth, municipality):
    response = auth.post(
        "/register/expert", expert_form(municipality), token_from="/register/expert"
    )

    assert response.status_code == 302
    assert path_of(response) == "/pending"
    user = session.execute(
        select(User).where(User.email == "petrov@school.example.org")
    ).scalar_one()
    assert user.status == AccountStatus.PENDING
    assert user.roles == {Role.EXPERT}
    assert user.organization_id is None
    assert user.consent_version == CONSENT_VERSION and user.consent_at is not None
    profile = session.execute(
        select(ExpertProfile).where(ExpertProfile.user_id == user.id)
    ).scalar_one()
    assert profile.directions == {Direction.TECHNICAL, Direction.ARTS}
    assert profile.municipality_id == municipality.id
    assert profile.home_organization_name == "МБОУ «Средняя школа № 7»"
    assert profile.capacity == 4
    assert profile.experience_years == 15
    assert len(audit_events(session, "account.register_expert", user.id)) == 1
    assert "Your registration is awaiting approval" in text(client.get("/pending"))


def test_register_expert_without_directions_creates_nothing(session, client, auth, municipality):
    response = auth.post(
        "/register/expert", expert_form(municipality, directions=[]), token_from="/register/expert"
    )

    assert response.status_code == 200
    assert field_error(response, "directions") == "Choose at least one direction."
    assert count(session, User) == 0
    assert count(session, ExpertProfile) == 0


def test_register_expert_email_taken_in_other_case_is_a_field_error(
    session, client, auth, municipality
):
    factories.ExpertUserFactory(email="user@example.org")
    session.commit()
    users_before = count(session, User)

    response = auth.post(
        "/register/expert",
        expert_form(municipality, email="USER@example.ORG"),
        token_from="/register/expert",
    )

    assert response.status_code == 200
    assert field_error(response, "email") == "An account with this e-mail already exists."
    assert count(session, User) == users_before


def test_register_expert_without_consent_creates_nothing(session, client, auth, municipality):
    response = auth.post(
        "/register/expert", expert_form(municipality, consent=None), token_from="/register/expert"
    )

    assert response.status_code == 200
    assert field_error(response, "consent") == "Consent is required to register."
    assert count(session, User) == 0


# --- the coordinator's list of registrations -------------------------------------------------


@pytest.fixture
def registrations(session):
    """Self-registrations in two municipalities, in every status."""
    north = factories.MunicipalityFactory(name="Северный округ")
    south = factories.MunicipalityFactory(name="Южный округ")
    rows = {
        "alpha": pending_applicant(
            session,
            full_name="Альфа Заявитель",
            organization_kwargs={"municipality": north, "short_name": "ООО «Альфа»"},
        ),
        "beta": pending_expert(
            session, full_name="Бета Эксперт", profile_kwargs={"municipality": south}
        ),
        "gamma": factories.ApplicantFactory(
            full_name="Гамма Одобренный",
            organization=factories.OrganizationFactory(municipality=south),
        ),
        "delta": pending_expert(
            session,
            full_name="Дельта Отклонённый",
            status=AccountStatus.REJECTED,
            profile_kwargs={"municipality": north},
        ),
    }
    rows["north"], rows["south"] = north, south
    session.commit()
    return rows


def names_listed(response) -> set[str]:
    names = {"Альфа Заявитель", "Бета Эксперт", "Гамма Одобренный", "Дельта Отклонённый"}
    return {name for name in names if name in text(response)}


def test_registrations_list_shows_pending_by_default(
    session, client, auth, coordinator, registrations
):
    auth.login(coordinator)

    response = client.get("/registrations")

    assert response.status_code == 200
    assert names_listed(response) == {"Альфа Заявитель", "Бета Эксперт"}
    assert "ООО «Альфа»" in text(response)
    assert "Северный округ" in text(response)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=", {"Альфа Заявитель", "Бета Эксперт", "Гамма Одобренный", "Дельта Отклонённый"}),
        ("status=approved", {"Гамма Одобренный"}),
        ("status=rejected", {"Дельта Отклонённый"}),
        ("role=expert&status=", {"Бета Эксперт", "Дельта Отклонённый"}),
        ("role=applicant&status=pending", {"Альфа Заявитель"}),
        ("municipality=north&status=", {"Альфа Заявитель", "Дельта Отклонённый"}),
        ("municipality=south&status=pending", {"Бета Эксперт"}),
        ("q=Альфа&status=", {"Альфа Заявитель"}),
        ("q=inn-of-gamma&status=", {"Гамма Одобренный"}),
        ("q=email-of-beta&status=", {"Бета Эксперт"}),
        ("q=nothing-like-this&status=", set()),
    ],
)
def test_registrations_list_filters(
    session, client, auth, coordinator, registrations, query, expected
):
    query = (
        query.replace("municipality=north", f"municipality_id={registrations['north'].id}")
        .replace("municipality=south", f"municipality_id={registrations['south'].id}")
        .replace("inn-of-gamma", registrations["gamma"].organization.inn)
        .replace("email-of-beta", registrations["beta"].email)
    )
    auth.login(coordinator)

    response = client.get(f"/registrations?{query}")

    assert response.status_code == 200
    assert names_listed(response) == expected
    if not expected:
        assert "No registrations match the filters." in text(response)


def test_registrations_list_search_ignores_case_of_cyrillic(
    session, client, auth, coordinator, registrations
):
    auth.login(coordinator)

    response = client.get("/registrations?q=альфа&status=")

    assert names_listed(response) == {"Альфа Заявитель"}


def test_registrations_list_search_wildcards_are_literal(
    session, client, auth, coordinator, registrations
):
    auth.login(coordinator)

    response = client.get("/registrations?q=%25&status=")

    assert response.status_code == 200
    assert names_listed(response) == set()


def test_registrations_list_search_finds_expert_home_organization(
    session, client, auth, coordinator, registrations
):
    auth.login(coordinator)

    response = client.get("/registrations?q=школа&status=")

    assert names_listed(response) == {"Бета Эксперт", "Дельта Отклонённый"}


def test_registrations_list_unknown_filter_value_is_bad_request(
    session, client, auth, coordinator, registrations
):
    auth.login(coordinator)

    assert client.get("/registrations?role=coordinator").status_code == 400
    assert client.get("/registrations?status=lost").status_code == 400


# --- approval and rejection -----------------------------------------------------------------


def test_approve_registration_approves_user_and_organization(
    session, client, auth, coordinator, app
):
    applicant = pending_applicant(session, email="new@ddt.example.org")
    session.commit()
    organization_id = applicant.organization_id
    auth.login(coordinator)
    page = client.get(f"/registrations/{applicant.id}")
    assert page.status_code == 200
    assert "Approve" in text(page)

    response = auth.post(
        f"/registrations/{applicant.id}/approve", token_from=f"/registrations/{applicant.id}"
    )

    assert response.status_code == 302
    assert path_of(response) == "/registrations"
    session.refresh(applicant)
    assert applicant.status == AccountStatus.APPROVED
    assert applicant.approved_by_id == coordinator.id
    assert applicant.approved_at is not None
    organization = session.get(Organization, organization_id)
    session.refresh(organization)
    assert organization.status == AccountStatus.APPROVED
    [event] = audit_events(session, "account.approve", applicant.id)
    assert event.actor_id == coordinator.id
    assert event.before == {"status": "pending"} and event.after == {"status": "approved"}
    assert len(audit_events(session, "organization.approve", organization_id)) == 1
    [message] = outbox_to(session, "new@ddt.example.org")
    assert f"{app.config['PUBLIC_URL']}/login" in message.body
    # The approved user now lands on their own home page.
    assert path_of(new_auth(app).login(applicant)) == "/provider"


def test_approve_expert_registration_lands_expert_home(session, client, auth, coordinator, app):
    expert = pending_expert(session)
    session.commit()
    auth.login(coordinator)

    auth.post(f"/registrations/{expert.id}/approve", token_from=f"/registrations/{expert.id}")

    session.refresh(expert)
    assert expert.status == AccountStatus.APPROVED
    assert len(audit_events(session, "account.approve", expert.id)) == 1
    assert len(outbox_to(session, expert.email)) == 1
    assert path_of(new_auth(app).login(expert)) == "/expert"


def test_approve_registration_without_consent_is_refused(session, client, auth, coordinator):
    applicant = pending_applicant(session, consent_at=None, consent_version=None)
    session.commit()
    auth.login(coordinator)
    page = client.get(f"/registrations/{applicant.id}")
    assert "No consent" in text(page)

    response = auth.post(
        f"/registrations/{applicant.id}/approve", token_from=f"/registrations/{applicant.id}"
    )

    assert response.status_code == 302
    assert path_of(response) == f"/registrations/{applicant.id}"
    shown = text(client.get(path_of(response)))
    assert "there is no consent to personal data processing" in shown
    session.refresh(applicant)
    assert applicant.status == AccountStatus.PENDING
    assert applicant.organization.status == AccountStatus.PENDING
    assert audit_events(session, "account.approve", applicant.id) == []
    assert outbox_to(session, applicant.email) == []


def test_approve_registration_twice_is_refused(session, client, auth, coordinator):
    applicant = pending_applicant(session)
    session.commit()
    auth.login(coordinator)
    token_page = f"/registrations/{applicant.id}"
    auth.post(f"/registrations/{applicant.id}/approve", token_from=token_page)

    response = auth.post(f"/registrations/{applicant.id}/approve", token_from=token_page)

    assert path_of(response) == token_page
    assert "already been processed" in text(client.get(token_page))
    assert len(audit_events(session, "account.approve", applicant.id)) == 1
    assert len(outbox_to(session, applicant.email)) == 1


def test_approve_registration_without_csrf_token_changes_nothing(
    session, client, auth, coordinator
):
    applicant = pending_applicant(session)
    session.commit()
    auth.login(coordinator)

    response = client.post(f"/registrations/{applicant.id}/approve")

    assert response.status_code == 400
    session.refresh(applicant)
    assert applicant.status == AccountStatus.PENDING


@pytest.mark.parametrize(
    ("make_user", "home"),
    [(factories.ApplicantFactory, "/provider"), (factories.ExpertUserFactory, "/expert")],
    ids=["applicant", "expert"],
)
def test_approve_registration_by_non_staff_is_forbidden(session, client, auth, make_user, home):
    target = pending_applicant(session)
    user = make_user()
    session.commit()
    auth.login(user)

    approve = auth.post(f"/registrations/{target.id}/approve", token_from=home)
    reject = auth.post(f"/registrations/{target.id}/reject", {"reason": "x"}, token_from=home)

    assert approve.status_code == reject.status_code == 403
    session.refresh(target)
    assert target.status == AccountStatus.PENDING
    assert audit_events(session, "account.approve", target.id) == []


def test_reject_registration_without_reason_is_a_field_error(session, client, auth, coordinator):
    applicant = pending_applicant(session)
    session.commit()
    auth.login(coordinator)

    response = auth.post(
        f"/registrations/{applicant.id}/reject",
        {"reason": "   "},
        token_from=f"/registrations/{applicant.id}",
    )

    assert response.status_code == 400
    assert field_error(response, "reason") == "This field is required."
    session.refresh(applicant)
    assert applicant.status == AccountStatus.PENDING
    assert applicant.rejection_reason is None
    assert audit_events(session, "account.reject", applicant.id) == []


def test_reject_registration_with_reason_rejects_and_tells_the_user(
    session, client, auth, coordinator, app
):
    applicant = pending_applicant(session)
    session.commit()
    auth.login(coordinator)
    reason = "ИНН не соответствует наименованию организации"

    response = auth.post(
        f"/registrations/{applicant.id}/reject",
        {"reason": reason},
        token_from=f"/registrations/{applicant.id}",
    )

    assert response.status_code == 302
    assert path_of(response) == "/registrations"
    session.refresh(applicant)
    assert applicant.status == AccountStatus.REJECTED
    assert applicant.rejection_reason == reason
    assert applicant.organization.status == AccountStatus.REJECTED
    [event] = audit_events(session, "account.reject", applicant.id)
    assert event.actor_id == coordinator.id and event.after["reason"] == reason
    [message] = outbox_to(session, applicant.email)
    assert reason in message.body
    # The rejected user still logs in, to the page that says why.
    user = new_auth(app)
    assert path_of(user.login(applicant)) == "/pending"
    pending = text(user.client.get("/pending"))
    assert "Your registration was rejected" in pending
    assert reason in pending


# --- ИНН claims: one approved holder per ИНН ----------------------------------------------


def register_claim(app, session, municipality, inn: str, email: str, short_name: str) -> User:
    """A provider's registration through the page, in a browser of its own."""
    browser = new_auth(app)
    response = browser.post(
        "/register/provider",
        provider_form(municipality, inn=inn, email=email, org_short_name=short_name),
        token_from="/register/provider",
    )
    assert path_of(response) == "/pending"
    return session.execute(select(User).where(User.email == email)).scalar_one()


def test_two_pending_registrations_with_one_inn_are_both_shown_to_the_coordinator(
    session, client, auth, coordinator, app, municipality
):
    inn = factories.make_inn(10)
    first = register_claim(app, session, municipality, inn, "first@example.org", "ООО «Первая»")
    second = register_claim(app, session, municipality, inn, "second@example.org", "ООО «Вторая»")
    assert first.organization_id != second.organization_id
    assert [first.organization.status, second.organization.status] == [AccountStatus.PENDING] * 2
    auth.login(coordinator)

    listing = text(client.get("/registrations"))
    rows = {
        row: listing.split(row, 1)[1].split("</tr>", 1)[0] for row in (first.email, second.email)
    }
    assert "The same INN:" in rows[first.email] and "ООО «Вторая»" in rows[first.email]
    assert "The same INN:" in rows[second.email] and "ООО «Первая»" in rows[second.email]
    for user, other in ((first, second), (second, first)):
        page = client.get(f"/registrations/{user.id}")
        assert page.status_code == 200
        claims = text(page).split('id="inn-claims"', 1)[1].split("</section>", 1)[0]
        assert f"the INN {inn} is also named by other organizations" in claims
        assert "Other registrations with this INN await approval" in claims
        assert other.organization.short_name in claims
        assert other.email in claims
        assert f"/registrations/{other.id}" in claims
        # No holder yet: the plain approval is offered.
        assert f"/registrations/{user.id}/approve" in text(page)


def test_approving_a_second_holder_of_an_inn_is_refused_without_the_transfer(
    session, client, auth, coordinator, app, municipality
):
    inn = factories.make_inn(10)
    first = register_claim(app, session, municipality, inn, "first@example.org", "ООО «Первая»")
    second = register_claim(app, session, municipality, inn, "second@example.org", "ООО «Вторая»")
    auth.login(coordinator)
    auth.post(f"/registrations/{first.id}/approve", token_from=f"/registrations/{first.id}")
    session.refresh(first.organization)
    assert first.organization.status == AccountStatus.APPROVED
    page = text(client.get(f"/registrations/{second.id}"))
    assert "The INN is held by the approved organization ООО «Первая»" in page
    assert f"/registrations/{second.id}/transfer-inn" in page
    assert f"/registrations/{second.id}/approve" not in page

    response = auth.post(
        f"/registrations/{second.id}/approve", token_from=f"/registrations/{second.id}"
    )

    assert response.status_code == 422
    assert (
        f"The INN {inn} is held by the approved organization ООО «Первая». This registration "
        "can be approved only by transferring the INN to it"
    ) in text(response)
    session.refresh(second)
    session.refresh(second.organization)
    session.refresh(first.organization)
    assert second.status == AccountStatus.PENDING
    assert second.organization.status == AccountStatus.PENDING
    assert first.organization.status == AccountStatus.APPROVED
    assert first.organization.inn_lost_at is None
    assert audit_events(session, "account.approve", second.id) == []
    assert outbox_to(session, second.email) == []
    assert len(outbox_to(session, first.email)) == 1  # its approval, nothing since


def transfer_form(reason="Представлено письмо на бланке за подписью директора", confirmed="y"):
    return {"transfer_reason": reason, "transfer_confirmed": confirmed}


def test_transfer_of_the_inn_approves_the_claim_and_marks_the_previous_holder(
    session, client, auth, coordinator, app, municipality
):
    squatter = factories.ApplicantFactory(email="squatter@example.org")
    program = factories.ProgramFactory(organization=squatter.organization)
    previous = squatter.organization
    session.commit()
    real = register_claim(
        app, session, municipality, previous.inn, "head@real.example.org", "МБУ ДО «Настоящий»"
    )
    auth.login(coordinator)
    page = f"/registrations/{real.id}"

    unconfirmed = auth.post(
        f"/registrations/{real.id}/transfer-inn", transfer_form(confirmed=None), token_from=page
    )
    assert unconfirmed.status_code == 400
    assert field_error(unconfirmed, "transfer_confirmed") == "Confirm the transfer."
    session.refresh(previous)
    assert previous.status == AccountStatus.APPROVED

    response = auth.post(f"/registrations/{real.id}/transfer-inn", transfer_form(), token_from=page)

    assert response.status_code == 302
    assert path_of(response) == "/registrations"
    session.refresh(real)
    session.refresh(real.organization)
    session.refresh(previous)
    assert real.status == AccountStatus.APPROVED
    assert real.organization.status == AccountStatus.APPROVED
    assert previous.status == AccountStatus.REJECTED
    assert previous.inn_lost_at is not None
    assert previous.inn_lost_reason == "Представлено письмо на бланке за подписью директора"
    assert previous.inn_lost_to_id == real.organization_id
    [event] = audit_events(session, "organization.inn_transfer", previous.id)
    assert event.actor_id == coordinator.id
    assert event.after["inn_lost_to_id"] == real.organization_id
    assert event.after["reason"] == previous.inn_lost_reason
    assert len(audit_events(session, "account.approve", real.id)) == 1
    [approved] = audit_events(session, "organization.approve", real.organization_id)
    assert approved.after == {"status": "approved", "inn_transferred_from": previous.id}
    # Nothing of the previous holder is deleted; its user is told and no longer acts for it.
    session.refresh(squatter)
    session.refresh(program)
    assert squatter.status == AccountStatus.APPROVED and squatter.organization_id == previous.id
    assert program.organization_id == previous.id
    [told] = outbox_to(session, squatter.email)
    assert previous.inn_lost_reason in told.body and previous.inn in told.body
    browser = new_auth(app)
    assert path_of(browser.login(squatter)) == "/provider"
    home = text(browser.client.get("/provider"))
    assert "transferred the INN of this organization to another registration" in home
    assert previous.inn_lost_reason in home
    assert browser.client.get(f"/programs/{program.id}").status_code == 200
    assert browser.client.get(f"/programs/{program.id}/edit").status_code == 403
    assert browser.client.get("/programs/new").status_code == 403
    assert browser.client.get("/organization/edit").status_code == 403


def test_transfer_of_an_inn_nobody_else_holds_is_refused(
    session, client, auth, coordinator, app, municipality
):
    claimant = register_claim(
        app, session, municipality, factories.make_inn(10), "only@example.org", "ООО «Одна»"
    )
    auth.login(coordinator)
    page = f"/registrations/{claimant.id}"

    response = auth.post(
        f"/registrations/{claimant.id}/transfer-inn", transfer_form(), token_from=page
    )

    assert response.status_code == 409
    assert "No other approved organization holds this INN" in text(response)
    session.refresh(claimant)
    assert claimant.status == AccountStatus.PENDING
    assert claimant.organization.status == AccountStatus.PENDING


def test_concurrent_approval_of_one_inn_is_refused_by_the_database_not_a_500(
    session, client, auth, coordinator, app, municipality, monkeypatch
):
    """The check in the service sees no holder (another coordinator's approval committed in
    between): the partial unique index refuses the second holder, answered as a 422."""
    from review_portal.accounts import services

    inn = factories.make_inn(10)
    first = register_claim(app, session, municipality, inn, "first@example.org", "ООО «Первая»")
    second = register_claim(app, session, municipality, inn, "second@example.org", "ООО «Вторая»")
    auth.login(coordinator)
    auth.post(f"/registrations/{first.id}/approve", token_from=f"/registrations/{first.id}")
    monkeypatch.setattr(services, "inn_holder", lambda inn: None)

    response = auth.post(
        f"/registrations/{second.id}/approve", token_from=f"/registrations/{second.id}"
    )

    assert response.status_code == 422
    assert "Another organization with this INN has just been approved" in text(response)
    session.refresh(second)
    session.refresh(second.organization)
    assert second.status == AccountStatus.PENDING
    assert second.organization.status == AccountStatus.PENDING
    assert audit_events(session, "account.approve", second.id) == []
    assert (
        count(
            session,
            Organization,
            Organization.inn == inn,
            Organization.status == AccountStatus.APPROVED,
        )
        == 1
    )


# --- changing the password ------------------------------------------------------------------


def change_password_form(current=factories.PASSWORD, new=NEW_PASSWORD) -> dict:
    return {"current_password": current, "password": new, "password_confirm": new}


def test_change_password_wrong_current_is_a_field_error(session, client, auth):
    user = factories.ApplicantFactory()
    session.commit()
    hash_before = user.password_hash
    auth.login(user)

    response = auth.post(
        "/password", change_password_form(current="Not-my-password-1"), token_from="/password"
    )

    assert response.status_code == 200
    assert field_error(response, "current_password") == "The current password is wrong."
    session.refresh(user)
    assert user.password_hash == hash_before


def test_change_password_new_one_works_old_one_does_not(session, client, auth, app):
    user = factories.ApplicantFactory()
    session.commit()
    elsewhere = new_auth(app)
    elsewhere.login(user)
    remembered = new_auth(app)
    remembered.login(user, remember=True)
    remember_cookie = remembered.client.get_cookie("remember_token").value
    auth.login(user)

    response = auth.post("/password", change_password_form(), token_from="/password")

    assert response.status_code == 302
    session.refresh(user)
    assert user.password_changed_at is not None
    assert len(audit_events(session, "account.change_password", user.id)) == 1
    # This browser stays logged in ...
    assert "Your password has been changed." in text(client.get("/provider"))
    assert logged_in_as(client) == user.full_name
    # ... every other session and "remember me" cookie ends.
    assert path_of(elsewhere.client.get("/provider")) == "/login?next=%2Fprovider"
    cookie_only = english(app.test_client())
    cookie_only.set_cookie("remember_token", remember_cookie)
    assert cookie_only.get("/provider").status_code == 302
    # Only the new password logs in.
    assert auth.login(user, factories.PASSWORD).status_code == 302  # already logged in
    fresh = new_auth(app)
    assert GENERIC_LOGIN_ERROR in text(fresh.login(user, factories.PASSWORD))
    assert path_of(fresh.login(user, NEW_PASSWORD)) == "/provider"


def test_change_password_renews_this_browsers_remember_cookie(session, client, auth, app):
    user = factories.ApplicantFactory()
    session.commit()
    auth.login(user, remember=True)
    old_cookie = client.get_cookie("remember_token").value

    auth.post("/password", change_password_form(), token_from="/password")

    new_cookie = client.get_cookie("remember_token").value
    assert new_cookie != old_cookie
    later = english(app.test_client())
    later.set_cookie("remember_token", new_cookie)
    assert later.get("/provider").status_code == 200


def test_change_password_weak_new_password_is_a_field_error(session, client, auth):
    user = factories.ApplicantFactory()
    session.commit()
    auth.login(user)

    response = auth.post(
        "/password", change_password_form(new="onlyletters"), token_from="/password"
    )

    assert response.status_code == 200
    assert (
        field_error(response, "password")
        == "The password must contain both letters and digits or symbols."
    )


# --- resetting a forgotten password ---------------------------------------------------------


RESET_SENT = "If an account with this e-mail exists, we have sent a link to reset the password."
RESET_LINK = re.compile(r"/password/reset/([A-Za-z0-9_-]+)")


def request_reset(auth, email: str):
    return auth.post("/password/reset", {"email": email}, token_from="/password/reset")


def test_password_reset_request_unknown_email_sends_nothing(session, client, auth):
    response = request_reset(auth, "nobody@example.org")

    assert response.status_code == 302
    assert path_of(response) == "/login"
    assert RESET_SENT in text(client.get("/login"))
    assert count(session, OutboxMessage) == 0
    assert count(session, PasswordResetToken) == 0


def test_password_reset_request_known_email_sends_a_link(session, client, auth):
    user = factories.ApplicantFactory(email="known@example.org")
    session.commit()

    response = request_reset(auth, "Known@Example.org")

    assert response.status_code == 302
    assert path_of(response) == "/login"
    assert RESET_SENT in text(client.get("/login"))
    [message] = outbox_to(session, "known@example.org")
    token = RESET_LINK.search(message.body).group(1)
    row = session.execute(
        select(PasswordResetToken).where(PasswordResetToken.user_id == user.id)
    ).scalar_one()
    assert token not in row.token_hash  # only the hash is stored
    assert row.used_at is None
    assert timedelta(hours=1) < row.expires_at - row.created_at <= timedelta(hours=2)


def test_password_reset_link_ignores_a_forged_host_header(session, client, auth, app):
    user = factories.ApplicantFactory()
    session.commit()
    forged = {"Host": "evil.example"}
    token = csrf_from(text(client.get("/password/reset", headers=forged)))

    response = client.post(
        "/password/reset", data={"email": user.email, "csrf_token": token}, headers=forged
    )

    assert response.status_code == 302

    [message] = outbox_to(session, user.email)
    assert "evil.example" not in message.body
    assert f"{app.config['PUBLIC_URL']}/password/reset/" in message.body


def reset_token_for(session, auth, user) -> str:
    request_reset(auth, user.email)
    message = outbox_to(session, user.email)[-1]
    return RESET_LINK.search(message.body).group(1)


def test_password_reset_token_sets_new_password_once(session, client, auth, app):
    user = factories.ApplicantFactory()
    session.commit()
    token = reset_token_for(session, auth, user)
    form_page = client.get(f"/password/reset/{token}")
    assert form_page.status_code == 200
    assert "Set a new password" in text(form_page)

    response = auth.post(
        f"/password/reset/{token}",
        {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
        token_from=f"/password/reset/{token}",
    )

    assert response.status_code == 302
    assert path_of(response) == "/login"
    assert "Your password has been set." in text(client.get("/login"))
    assert len(audit_events(session, "account.reset_password", user.id)) == 1
    # The link is spent.
    again = client.get(f"/password/reset/{token}")
    assert again.status_code == 302
    assert path_of(again) == "/password/reset"
    assert "The reset link is invalid or has expired." in text(client.get("/password/reset"))
    # Only the new password logs in.
    assert GENERIC_LOGIN_ERROR in text(auth.login(user, factories.PASSWORD))
    assert path_of(auth.login(user, NEW_PASSWORD)) == "/provider"


def test_password_reset_token_spent_refuses_a_second_post(session, client, auth):
    user = factories.ApplicantFactory()
    session.commit()
    token = reset_token_for(session, auth, user)
    form = {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD}
    auth.post(f"/password/reset/{token}", form, token_from=f"/password/reset/{token}")
    hash_after_first = session.get(User, user.id).password_hash

    response = auth.post(
        f"/password/reset/{token}",
        {"password": "Another-pass-99", "password_confirm": "Another-pass-99"},
        token_from="/password/reset",
    )

    assert path_of(response) == "/password/reset"
    session.refresh(user)
    assert user.password_hash == hash_after_first


def test_password_reset_using_one_link_spends_the_others(session, client, auth):
    user = factories.ApplicantFactory()
    session.commit()
    first = reset_token_for(session, auth, user)
    second = reset_token_for(session, auth, user)
    assert first != second

    auth.post(
        f"/password/reset/{second}",
        {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
        token_from=f"/password/reset/{second}",
    )

    assert path_of(client.get(f"/password/reset/{first}")) == "/password/reset"


def test_password_reset_expired_token_fails(session, client, auth):
    user = factories.ApplicantFactory()
    session.commit()
    hash_before = user.password_hash
    token = reset_token_for(session, auth, user)
    row = session.execute(
        select(PasswordResetToken).where(PasswordResetToken.user_id == user.id)
    ).scalar_one()
    row.expires_at = utcnow() - timedelta(minutes=1)
    session.commit()

    response = client.get(f"/password/reset/{token}")

    assert response.status_code == 302
    assert path_of(response) == "/password/reset"
    assert "The reset link is invalid or has expired." in text(client.get("/password/reset"))
    posted = auth.post(
        f"/password/reset/{token}",
        {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
        token_from="/password/reset",
    )
    assert path_of(posted) == "/password/reset"
    session.refresh(user)
    assert user.password_hash == hash_before


def test_password_reset_unknown_token_fails(session, client):
    response = client.get("/password/reset/not-a-real-token")

    assert response.status_code == 302
    assert path_of(response) == "/password/reset"


def test_password_reset_ends_other_sessions(session, client, auth, app):
    user = factories.ApplicantFactory()
    session.commit()
    elsewhere = new_auth(app)
    elsewhere.login(user)
    token = reset_token_for(session, auth, user)

    auth.post(
        f"/password/reset/{token}",
        {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
        token_from=f"/password/reset/{token}",
    )

    assert path_of(elsewhere.client.get("/provider")) == "/login?next=%2Fprovider"


def test_published_password_is_hashed_once_for_every_account_given_it(app, session):
    from review_portal.accounts.services import (
        authenticate,
        create_approved_user,
        published_password,
    )

    published = "Published-demo-1"
    with published_password(published):
        first = create_approved_user("demo1@example.org", published, "Первый", [Role.EXPERT])
        second = create_approved_user("demo2@example.org", published, "Второй", [Role.EXPERT])
        other = create_approved_user("own@example.org", NEW_PASSWORD, "Свой", [Role.EXPERT])
    later = create_approved_user("demo3@example.org", published, "Третий", [Role.EXPERT])
    session.flush()
    # One hash for the published password inside the block; a secret still gets its own salt.
    assert first.password_hash == second.password_hash
    assert other.password_hash != first.password_hash
    assert later.password_hash != first.password_hash
    for email, password in (
        ("demo1@example.org", published),
        ("demo2@example.org", published),
        ("own@example.org", NEW_PASSWORD),
        ("demo3@example.org", published),
    ):
        assert authenticate(email, password) is not None, email
    assert authenticate("demo2@example.org", NEW_PASSWORD) is None
