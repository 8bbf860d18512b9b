"""Throttling (issue 19, items 7 and 8), walked as attackers and owners meet it: failed
logins slow the address and the account at that address, never the owner elsewhere nor the
other people behind one address; registration, password-reset requests and the upload on
the public verification page are limited per address; a refusal is a Russian page (or
JSON) with ``Retry-After``; the counters are shared through Redis and fresh in every
application.
"""

from __future__ import annotations

import io
import re
import time
from urllib.parse import urlsplit

import pytest
import redis
from sqlalchemy import func, select

from review_portal.accounts.models import User
from review_portal.extensions import db
from review_portal.notifications.models import OutboxMessage
from review_portal.notifications.services import deliver_outbox
from tests import factories
from tests.conftest import Auth, make_app
from tests.processes import accepts, free_port, spawn, stop, wait_until
from tests.test_accounts import expert_form
from tests.test_i18n import compile_stale_catalogs
from tests.test_mail import smtp_server, use_server  # noqa: F401 - the fixture

compile_stale_catalogs()  # the pages below are read in Russian

WRONG = "Wrong-password-1"
#: A school's address behind NAT, an attacker's, and an address nobody failed from.
SCHOOL, ATTACKER, HOME = "203.0.113.10", "198.51.100.66", "192.0.2.45"
#: The default figures (review_portal/config.py): the tests below use them as they are.
PAIR_LIMIT, ADDRESS_LIMIT = 5, 50
#: Redis database of these tests (the Celery tests use 15, the demo's production app 14).
REDIS_URL = "redis://127.0.0.1:6379/13"


def browser(app, address: str) -> Auth:
    """A browser of its own (cookies) at ``address``."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return Auth(client)


def text(response) -> str:
    return response.get_data(as_text=True)


def path_of(response) -> str:
    return urlsplit(response.headers["Location"]).path


def retry_after(response) -> int:
    """The ``Retry-After`` of a 429 answer, in seconds (checked to be one)."""
    assert response.status_code == 429
    value = response.headers.get("Retry-After")
    assert value is not None and value.isdigit(), value
    return int(value)


CSRF_VALUE = re.compile(r'(name="csrf_token"[^>]*value=")[^"]+(")')


def without_csrf(html: str) -> str:
    return CSRF_VALUE.sub(r"\1CSRF\2", html)


def outbox_count(session, email: str) -> int:
    session.expire_all()
    return session.execute(
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.to_email == email)
    ).scalar_one()


# --- logging in ------------------------------------------------------------------------------


def test_login_owner_elsewhere_logs_in_after_failures_on_their_account(app, session, client):
    user = factories.ApplicantFactory()
    session.commit()
    attacker = browser(app, ATTACKER)
    for _ in range(2 * PAIR_LIMIT):
        attacker.login(user, WRONG)

    response = browser(app, HOME).login(user)

    assert response.status_code == 302
    assert path_of(response) == "/provider"
    session.refresh(user)
    assert user.last_login_at is not None


def test_login_attacker_refused_at_their_address_even_with_the_right_password(app, session, client):
    user = factories.ApplicantFactory()
    session.commit()
    attacker = browser(app, ATTACKER)
    for _ in range(PAIR_LIMIT):
        assert attacker.login(user, WRONG).status_code == 200

    response = attacker.login(user)

    assert 14 * 60 < retry_after(response) <= 15 * 60
    page = text(response)
    assert "Слишком много неудачных попыток входа в эту учётную запись с вашего адреса." in page
    assert "Повторите попытку через 15 мин." in page
    session.refresh(user)
    assert user.last_login_at is None


def test_login_unknown_email_is_throttled_like_a_known_one(app, session, client):
    factories.ApplicantFactory(email="known@example.org")
    session.commit()
    known, unknown = browser(app, ATTACKER), browser(app, ATTACKER)
    for _ in range(PAIR_LIMIT):
        known.login("known@example.org", WRONG)
        unknown.login("nobody@example.org", WRONG)

    first, second = known.login("known@example.org", WRONG), unknown.login("nobody@example.org")

    assert first.status_code == second.status_code == 429
    assert abs(retry_after(first) - retry_after(second)) <= 1
    assert without_csrf(text(first)) == without_csrf(text(second))


def test_login_many_failures_behind_one_address_do_not_lock_out_its_users(app, session, client):
    teacher = factories.ApplicantFactory()
    session.commit()
    pupil = browser(app, SCHOOL)
    for n in range(30):
        assert pupil.login(f"guess{n}@example.org", WRONG).status_code == 200

    # A browser that has never logged in here, with the right password.
    response = browser(app, SCHOOL).login(teacher)

    assert response.status_code == 302
    assert path_of(response) == "/provider"


def test_login_address_limit_slows_one_password_tried_on_many_accounts(app, session, client):
    user = factories.ApplicantFactory()
    session.commit()
    attacker = browser(app, ATTACKER)
    for n in range(ADDRESS_LIMIT):
        assert attacker.login(f"guess{n}@example.org", WRONG).status_code == 200

    refused = attacker.login("one-more@example.org", WRONG)

    assert 0 < retry_after(refused) <= 15 * 60
    assert "Слишком много неудачных попыток входа с вашего сетевого адреса." in text(refused)
    # A browser never used at that address waits too; another address does not.
    assert browser(app, ATTACKER).login(user).status_code == 429
    assert path_of(browser(app, HOME).login(user)) == "/provider"


def test_login_trusted_browser_is_not_locked_out_by_failures_at_its_address(app, session, client):
    user = factories.ApplicantFactory()
    session.commit()
    teacher = browser(app, SCHOOL)
    assert path_of(teacher.login(user)) == "/provider"
    teacher.logout()
    # A pupil at the same address: the teacher's own account, then everybody's.
    pupil = browser(app, SCHOOL)
    for _ in range(PAIR_LIMIT):
        pupil.login(user, WRONG)
    for n in range(ADDRESS_LIMIT - PAIR_LIMIT):
        pupil.login(f"guess{n}@example.org", WRONG)
    assert pupil.login(user).status_code == 429
    # A forged trust cookie is no trust.
    forged = browser(app, SCHOOL)
    forged.client.set_cookie("login_browser", "eyJpZCI6ImEiLCJhY2NvdW50cyI6W119.x.y", path="/login")
    assert forged.login(user).status_code == 429

    response = teacher.login(user)

    assert response.status_code == 302
    assert path_of(response) == "/provider"


def test_login_trusted_browser_failures_have_their_own_limit(app, session, client):
    user = factories.ApplicantFactory()
    session.commit()
    shared = browser(app, SCHOOL)
    shared.login(user)
    shared.logout()
    for _ in range(PAIR_LIMIT):
        assert shared.login(user, WRONG).status_code == 200

    refused = shared.login(user)

    assert retry_after(refused) > 0
    assert "из этого браузера" in text(refused)
    # The same account from another browser at the same address was never refused.
    assert path_of(browser(app, SCHOOL).login(user)) == "/provider"


def test_login_right_password_clears_the_failures_of_its_address(app, session, client):
    user = factories.ApplicantFactory()
    session.commit()
    owner = browser(app, HOME)
    for _ in range(PAIR_LIMIT - 1):
        owner.login(user, WRONG)
    assert path_of(owner.login(user)) == "/provider"
    owner.logout()
    owner.client.delete_cookie("login_browser", path="/login")

    for _ in range(PAIR_LIMIT):
        assert owner.login(user, WRONG).status_code == 200
    assert owner.login(user).status_code == 429


def test_login_limit_lets_again_through_after_the_window(app, session, client, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_LIMIT_PER_PAIR", "2 per 1 second")
    user = factories.ApplicantFactory()
    session.commit()
    attacker = browser(app, ATTACKER)
    attacker.login(user, WRONG)
    attacker.login(user, WRONG)
    refused = attacker.login(user)
    assert refused.status_code == 429

    time.sleep(retry_after(refused))

    assert path_of(attacker.login(user)) == "/provider"


def test_login_forwarded_for_is_believed_only_from_trusted_proxies(app, session, client):
    user = factories.ApplicantFactory()
    session.commit()
    attacker = browser(app, ATTACKER)
    # No proxy is trusted: a client writing its own X-Forwarded-For is still one address.
    for n in range(PAIR_LIMIT):
        attacker.client.environ_base["HTTP_X_FORWARDED_FOR"] = f"10.0.0.{n}"
        attacker.login(user, WRONG)
    assert attacker.login(user).status_code == 429


def test_login_behind_a_proxy_counts_the_real_client(tmp_path):
    app = make_app("sqlite", tmp_path, TRUSTED_PROXY_HOPS=1)
    with app.app_context():
        from review_portal.accounts.services import create_approved_user
        from review_portal.enums import Role
        from review_portal.extensions import db

        create_approved_user("owner@example.org", factories.PASSWORD, "Владелец", [Role.EXPERT])
        db.session.commit()
    proxy = "10.0.0.1"
    attacker, owner = browser(app, proxy), browser(app, proxy)
    attacker.client.environ_base["HTTP_X_FORWARDED_FOR"] = ATTACKER
    owner.client.environ_base["HTTP_X_FORWARDED_FOR"] = HOME
    for _ in range(PAIR_LIMIT):
        attacker.login("owner@example.org", WRONG)
    assert attacker.login("owner@example.org").status_code == 429

    assert path_of(owner.login("owner@example.org")) == "/expert"


# --- password reset --------------------------------------------------------------------------


def request_reset(auth: Auth, email: str):
    return auth.post("/password/reset", {"email": email}, token_from="/password/reset")


def test_password_reset_flood_from_one_address_is_refused_and_mails_few(
    app,
    session,
    client,
    monkeypatch,
    smtp_server,  # noqa: F811
):
    use_server(monkeypatch, app, smtp_server.port)
    user = factories.ApplicantFactory()
    session.commit()
    attacker = browser(app, ATTACKER)

    answers = [request_reset(attacker, user.email) for _ in range(25)]

    statuses = [answer.status_code for answer in answers]
    assert statuses == [302] * 10 + [429] * 15
    assert retry_after(answers[-1]) > 0
    assert "Слишком много запросов на сброс пароля с вашего сетевого адреса." in text(answers[-1])
    assert outbox_count(session, user.email) == 3
    deliver_outbox()
    assert [m.rcpt_tos for m in smtp_server.messages] == [[user.email]] * 3


def test_password_reset_per_email_limit_answers_as_usual(app, session, client):
    user = factories.ApplicantFactory()
    session.commit()

    def ask(email: str, n: int):
        auth = browser(app, f"198.51.100.{n}")
        response = request_reset(auth, email)
        assert response.status_code == 302
        assert path_of(response) == "/login"
        return text(auth.client.get("/login"))

    known = [ask(user.email, n) for n in range(6)]
    unknown = [ask("nobody@example.org", n) for n in range(6)]

    assert outbox_count(session, user.email) == 3
    sent = "Если учётная запись с таким адресом электронной почты существует"
    assert all(sent in page for page in known + unknown)
    assert {without_csrf(page) for page in known + unknown} == {without_csrf(known[0])}


# --- registration ----------------------------------------------------------------------------


def test_registration_is_limited_per_address(app, session, client, monkeypatch):
    monkeypatch.setitem(app.config, "REGISTRATION_LIMIT_PER_ADDRESS", "3 per hour")
    municipality = factories.MunicipalityFactory()
    session.commit()
    attacker = browser(app, ATTACKER)
    form = expert_form(municipality)
    # Both forms share the counter; refused forms count too.
    assert attacker.post("/register/expert", {}, token_from="/register/expert").status_code == 200
    assert (
        attacker.post("/register/provider", {}, token_from="/register/provider").status_code == 200
    )
    assert attacker.post("/register/expert", {}, token_from="/register/expert").status_code == 200

    refused = attacker.post("/register/expert", form, token_from="/register/expert")

    assert retry_after(refused) > 0
    assert "Слишком много попыток регистрации с вашего сетевого адреса." in text(refused)
    assert session.execute(select(User).where(User.email == form["email"])).first() is None
    elsewhere = browser(app, HOME)
    assert path_of(elsewhere.post("/register/expert", form, token_from="/register/expert")) == (
        "/pending"
    )


# --- the public verification page ------------------------------------------------------------


def upload(auth: Auth, **kwargs):
    data = {"file": (io.BytesIO(b"%PDF-1.4 not a conclusion"), "copy.pdf")}
    return auth.post(
        "/verify", data, token_from="/verify", content_type="multipart/form-data", **kwargs
    )


def test_verification_upload_is_limited_per_address(app, session, client, monkeypatch):
    monkeypatch.setitem(app.config, "VERIFY_UPLOAD_LIMIT_PER_ADDRESS", "3 per hour")
    visitor = browser(app, ATTACKER)
    for _ in range(3):
        assert upload(visitor).status_code == 200

    refused = upload(visitor)
    as_json = upload(visitor, headers={"Accept": "application/json"})

    assert 59 * 60 < retry_after(refused) <= 60 * 60
    assert "Слишком много документов проверено с вашего сетевого адреса." in text(refused)
    assert retry_after(as_json) > 0
    assert as_json.json["error"] == "Слишком много запросов"
    assert as_json.json["message"].startswith("Слишком много документов проверено")
    # Checking by number is not limited, nor is another address.
    assert visitor.client.get("/verify").status_code == 200
    assert upload(browser(app, HOME)).status_code == 200


# --- where the counters live -----------------------------------------------------------------


def fail_logins(app, address: str, times: int) -> list[int]:
    auth = browser(app, address)
    return [auth.login("nobody@example.org", WRONG).status_code for _ in range(times)]


def test_counters_are_fresh_in_every_application(tmp_path):
    first = make_app("sqlite", tmp_path / "first")
    second = make_app("sqlite", tmp_path / "second")

    assert fail_logins(first, ATTACKER, PAIR_LIMIT + 1) == [200] * PAIR_LIMIT + [429]
    assert fail_logins(second, ATTACKER, 1) == [200]


@pytest.fixture
def shared_redis():
    connection = redis.Redis.from_url(REDIS_URL)
    connection.flushdb()
    yield REDIS_URL
    connection.flushdb()
    connection.close()


def test_counters_in_redis_are_shared_by_two_applications(tmp_path, shared_redis):
    first = make_app("sqlite", tmp_path / "first", RATELIMIT_STORAGE_URI=shared_redis)
    second = make_app("sqlite", tmp_path / "second", RATELIMIT_STORAGE_URI=shared_redis)

    assert fail_logins(first, ATTACKER, 3) == [200] * 3
    assert fail_logins(second, ATTACKER, 3) == [200, 200, 429]
    assert fail_logins(first, ATTACKER, 1) == [429]
    assert fail_logins(second, HOME, 1) == [200]


def test_unreachable_storage_falls_back_to_memory(tmp_path):
    """Issue 21, item 4d: the storage on a closed port. Logging in works, the limits apply
    through each process's memory, a refusal is the usual Russian page; never a 500."""
    app = make_app("sqlite", tmp_path, RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{free_port()}/0")
    with app.app_context():
        user = factories.ApplicantFactory()
        db.session.commit()
        email = user.email
        db.session.remove()

    owner = browser(app, HOME)
    assert path_of(owner.login(email)) != "/login"
    assert fail_logins(app, ATTACKER, PAIR_LIMIT + 1) == [200] * PAIR_LIMIT + [429]
    refused = browser(app, ATTACKER).login("nobody@example.org", WRONG)
    assert retry_after(refused) > 0
    assert "Слишком много неудачных попыток входа" in text(refused)
    assert fail_logins(app, HOME, 1) == [200]
    assert request_reset(browser(app, SCHOOL), email).status_code == 302


@pytest.fixture
def private_redis(tmp_path):
    """A Redis server of this test's own, on a free port, which the test may stop."""
    port = free_port()
    log = tmp_path / "redis.log"
    server = spawn(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"], log)
    wait_until(lambda: accepts(port), "redis-server", timeout=20, process=server, log=log)
    yield server, f"redis://127.0.0.1:{port}/0"
    stop(server)


@pytest.mark.parametrize("password", [WRONG, factories.PASSWORD], ids=["wrong", "right"])
def test_storage_lost_during_a_login_is_no_500(tmp_path, private_redis, monkeypatch, password):
    """Redis answers the check before the view and is gone when the failure is counted
    (or, after a right password, when the account's failures are cleared): the login is
    answered as usual, and the next ones count in memory."""
    from review_portal.accounts import routes

    server, url = private_redis
    app = make_app("sqlite", tmp_path, RATELIMIT_STORAGE_URI=url)
    with app.app_context():
        user = factories.ApplicantFactory()
        db.session.commit()
        email = user.email
        db.session.remove()
    real = routes.services.authenticate

    def authenticate(*args):
        stop(server)
        return real(*args)

    monkeypatch.setattr(routes.services, "authenticate", authenticate)
    answer = browser(app, ATTACKER).login(email, password)
    assert answer.status_code == (200 if password == WRONG else 302)
    assert server.poll() is not None
    monkeypatch.setattr(routes.services, "authenticate", real)

    assert fail_logins(app, HOME, PAIR_LIMIT + 1) == [200] * PAIR_LIMIT + [429]
