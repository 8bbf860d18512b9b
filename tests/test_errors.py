"""Error pages and the health check answer in the interface's terms, and change nothing."""

from __future__ import annotations

from review_portal import create_app
from tests.factories import ApplicantFactory, CoordinatorFactory


def test_unknown_page_is_404_with_the_portal_layout(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "<h1>404" in page
    assert 'href="/"' in page


def test_unknown_object_is_404(client, auth, session):
    auth.login(CoordinatorFactory())
    assert client.get("/registrations/987654").status_code == 404


def test_another_roles_page_is_403(client, auth, session):
    auth.login(ApplicantFactory())
    response = client.get("/coordinator")
    assert response.status_code == 403
    assert "<h1>403" in response.get_data(as_text=True)


def test_api_clients_get_json_errors(client):
    response = client.get("/no/such/page", headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.is_json and set(response.get_json()) == {"error", "message"}


def test_post_without_csrf_token_is_400_and_changes_nothing(client, auth, session):
    user = ApplicantFactory(status="pending")
    coordinator = CoordinatorFactory()
    auth.login(coordinator)
    response = client.post(f"/registrations/{user.id}/approve", data={})
    assert response.status_code == 400
    assert "<h1>400" in response.get_data(as_text=True)
    assert user.status.value == "pending"


def test_unexpected_error_is_500_page_and_rolls_back(tmp_path):
    app = create_app(
        "testing",
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'e.sqlite'}",
        PROPAGATE_TEST_ERRORS=False,
    )

    @app.get("/boom")
    def boom():
        raise RuntimeError("boom")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert "<h1>500" in response.get_data(as_text=True)


def test_healthz_reports_an_unreachable_database(tmp_path):
    app = create_app("testing", SQLALCHEMY_DATABASE_URI="postgresql://nobody@127.0.0.1:1/none")
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "error", "database": "error"}
