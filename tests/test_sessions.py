"""Sessions that end: logging out, a new password (changed or reset) and an administrator
switching an account off or changing its roles end every session and "remember me" cookie
of that user, copies of them included (a per-user session version checked on every
request); answers to a logged-in user are stored by no cache, the anonymous registry keeps
its caching."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from review_portal.audit.models import AuditEvent
from review_portal.enums import RegistryKind
from review_portal.registry.services import publish_registry
from tests import factories
from tests.conftest import Auth

NEW_PASSWORD = "Brand-new-pass-7"
LOGIN_PAGE = "/login?next=%2Fprovider"


@pytest.fixture(autouse=True)
def _english(english):
    pass


def browser(app) -> Auth:
    """Another browser with its own cookies."""
    return Auth(app.test_client())


def opens(client, path: str = "/provider") -> bool:
    """Whether ``client`` gets the page (a redirect to the login page does not count)."""
    response = client.get(path)
    if response.status_code == 302:
        parts = urlsplit(response.headers["Location"])
        assert parts.path == "/login", response.headers["Location"]
        return False
    assert response.status_code == 200, response.status_code
    return True


def with_cookie(app, name: str, value: str):
    """A fresh browser that has only this cookie: one copied from somebody's browser."""
    client = app.test_client()
    client.set_cookie(name, value)
    return client


def session_cookie(app, client) -> str:
    return client.get_cookie(app.config["SESSION_COOKIE_NAME"]).value


def remember_cookie(client) -> str:
    return client.get_cookie("remember_token").value


# --- logging out ----------------------------------------------------------------------------


def test_logout_ends_a_captured_session_cookie(app, session, client, auth):
    user = factories.ApplicantFactory()
    session.commit()
    auth.login(user)
    captured = session_cookie(app, client)
    assert opens(with_cookie(app, app.config["SESSION_COOKIE_NAME"], captured))

    assert auth.logout().status_code == 302

    assert not opens(client)
    assert not opens(with_cookie(app, app.config["SESSION_COOKIE_NAME"], captured))


def test_logout_ends_a_captured_remember_cookie(app, session, client, auth):
    user = factories.ApplicantFactory()
    session.commit()
    auth.login(user, remember=True)
    captured = remember_cookie(client)
    assert opens(with_cookie(app, "remember_token", captured))

    auth.logout()

    assert not opens(with_cookie(app, "remember_token", captured))
    event = session.execute(
        select(AuditEvent).where(AuditEvent.action == "account.logout")
    ).scalar_one()
    assert event.actor_id == user.id and event.object_id == str(user.id)


def test_logout_ends_the_users_other_browsers_too(app, session, client, auth):
    user = factories.ApplicantFactory()
    other_user = factories.ApplicantFactory()
    session.commit()
    elsewhere = browser(app)
    elsewhere.login(user, remember=True)
    someone_else = browser(app)
    someone_else.login(other_user)
    auth.login(user)

    auth.logout()

    assert not opens(elsewhere.client)
    # Another user's session is not touched; the user logs in again as before.
    assert opens(someone_else.client)
    auth.login(user)
    assert opens(client)


# --- a new password -------------------------------------------------------------------------


def test_password_change_in_another_browser_logs_the_first_one_out(app, session, client, auth):
    user = factories.ApplicantFactory()
    session.commit()
    auth.login(user, remember=True)
    captured = remember_cookie(client)
    other = browser(app)
    other.login(user)

    response = other.post(
        "/password",
        {
            "current_password": factories.PASSWORD,
            "password": NEW_PASSWORD,
            "password_confirm": NEW_PASSWORD,
        },
        token_from="/password",
    )

    assert response.status_code == 302
    assert opens(other.client)  # the browser that changed it stays logged in
    assert not opens(client)
    assert not opens(with_cookie(app, "remember_token", captured))


RESET_LINK = re.compile(r"/password/reset/([A-Za-z0-9_-]+)")


def test_password_reset_ends_every_session(app, session, client, auth):
    from review_portal.notifications.models import OutboxMessage

    user = factories.ApplicantFactory()
    session.commit()
    auth.login(user, remember=True)
    captured = remember_cookie(client)
    stranger = browser(app)
    stranger.post("/password/reset", {"email": user.email}, token_from="/password/reset")
    message = session.execute(
        select(OutboxMessage).where(OutboxMessage.to_email == user.email)
    ).scalar_one()
    token = RESET_LINK.search(message.body).group(1)

    response = stranger.post(
        f"/password/reset/{token}",
        {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
        token_from=f"/password/reset/{token}",
    )

    assert response.status_code == 302
    assert not opens(client)
    assert not opens(with_cookie(app, "remember_token", captured))


# --- an administrator's changes -------------------------------------------------------------


def edit_user(auth, user, roles: list[str], active: bool = True):
    data = {"full_name": user.full_name, "roles": roles}
    if user.organization is not None:
        data["organization_inn"] = user.organization.inn
    if active:
        data["active"] = "y"
    response = auth.post(f"/admin/users/{user.id}", data, token_from=f"/admin/users/{user.id}")
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]


def test_admin_changing_roles_ends_the_users_sessions(app, session, client, auth):
    target = factories.CoordinatorFactory()
    admin = factories.AdminFactory()
    session.commit()
    theirs = browser(app)
    theirs.login(target, remember=True)
    captured = remember_cookie(theirs.client)
    assert opens(theirs.client, "/coordinator")
    auth.login(admin)

    edit_user(auth, target, ["coordinator", "expert"])

    assert not opens(theirs.client, "/coordinator")
    assert not opens(with_cookie(app, "remember_token", captured), "/coordinator")
    assert opens(client, "/coordinator")  # the administrator's own session goes on


def test_admin_switching_an_account_off_ends_its_sessions(app, session, client, auth):
    target = factories.ApplicantFactory()
    admin = factories.AdminFactory()
    session.commit()
    theirs = browser(app)
    theirs.login(target, remember=True)
    captured = remember_cookie(theirs.client)
    auth.login(admin)

    edit_user(auth, target, ["applicant"], active=False)

    assert not opens(theirs.client)
    assert not opens(with_cookie(app, "remember_token", captured))


def test_admin_renaming_a_user_keeps_their_sessions(app, session, client, auth):
    target = factories.ApplicantFactory()
    admin = factories.AdminFactory()
    session.commit()
    theirs = browser(app)
    theirs.login(target)
    auth.login(admin)

    edit_user(auth, target, ["applicant"])

    assert opens(theirs.client)


def test_admin_giving_themselves_a_role_stays_logged_in(app, session, client, auth):
    admin = factories.AdminFactory()
    session.commit()
    auth.login(admin, remember=True)
    other = browser(app)
    other.login(admin)

    edit_user(auth, admin, ["admin", "coordinator"])

    assert opens(client, "/coordinator")
    assert opens(with_cookie(app, "remember_token", remember_cookie(client)), "/coordinator")
    assert not opens(other.client, "/coordinator")


# --- identities that name nobody ------------------------------------------------------------


@pytest.mark.parametrize(
    "identity",
    [
        "1:0a1b2c3d4e5f6789",  # the format before session versions
        "99999999999999999999:0",
        "4294967296:0",
        "١:٠",
        "1",
        ":",
        "",
    ],
)
def test_session_naming_nobody_is_anonymous(app, session, client, identity):
    factories.ApplicantFactory()
    session.commit()
    with client.session_transaction() as browser_session:
        browser_session["_user_id"] = identity
        browser_session["_fresh"] = True

    assert not opens(client)


# --- caching --------------------------------------------------------------------------------


def test_pages_of_a_logged_in_user_are_not_stored(app, session, client, auth):
    user = factories.ApplicantFactory()
    session.commit()
    auth.login(user)

    response = client.get("/provider")

    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"]
    assert response.headers["Pragma"] == "no-cache"
    static = client.get("/static/" + static_files(app)[0])
    static.close()
    assert static.status_code == 200
    assert "no-store" not in static.headers.get("Cache-Control", "")


def static_files(app):
    from pathlib import Path

    root = Path(app.static_folder)
    return [str(p.relative_to(root)) for p in sorted(root.rglob("*.css"))]


def test_registry_is_cached_for_visitors_and_not_stored_for_users(app, session, client, auth):
    coordinator = factories.CoordinatorFactory()
    factories.admitted_program(coordinator=coordinator, title="Публичная программа")
    publish_registry(RegistryKind.CERTIFIED, coordinator)
    session.commit()

    anonymous = client.get("/registry")
    assert anonymous.status_code == 200
    assert "no-store" not in anonymous.headers["Cache-Control"]
    assert "Pragma" not in anonymous.headers
    assert anonymous.headers["ETag"]
    api = client.get("/api/v1/registry")
    assert "public" in api.headers["Cache-Control"]
    assert "no-store" not in api.headers["Cache-Control"]

    auth.login(coordinator)
    logged_in = client.get("/registry")
    assert logged_in.status_code == 200
    assert "no-store" in logged_in.headers["Cache-Control"]
    assert "public" not in logged_in.headers["Cache-Control"]
    assert logged_in.headers["Pragma"] == "no-cache"
