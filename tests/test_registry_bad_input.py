"""The registry's public answers to odd requests: numbers too large for the database, ids
in other scripts, and conditional requests whose answer depends on the session.

Every one is a clear 400/404 (never a 500), and a date alone never gets a ``304`` for an
answer that changed with the session (its language, its user).
"""

from __future__ import annotations

import pytest

from review_portal.enums import RegistryKind
from review_portal.registry.services import publish_registry
from tests.factories import CoordinatorFactory, admitted_program

HUGE = "99999999999999999999"


@pytest.fixture
def snapshot(session):
    coordinator = CoordinatorFactory()
    admitted_program(coordinator=coordinator, title="Шахматная школа")
    return publish_registry(RegistryKind.CERTIFIED, coordinator)


@pytest.mark.parametrize(
    "path",
    [
        f"/registry?page={HUGE}",
        "/registry?page=9223372036854775807",
        f"/registry?snapshot={HUGE}",
        f"/registry.csv?snapshot={HUGE}",
        f"/registry.xlsx?page={HUGE}",
        f"/api/v1/registry?page={HUGE}",
        f"/api/v1/registry?snapshot={HUGE}",
        "/api/v1/registry?per_page=-5",
        f"/registry/diff?from={HUGE}&to=1",
        "/registry/diff?from=²&to=1",
        f"/api/v1/registry/diff?from={HUGE}&to=1",
        "/api/v1/registry/diff?from=²&to=1",
    ],
)
def test_numbers_out_of_range_are_a_bad_request(english, snapshot, path):
    response = english.get(path)
    assert response.status_code == 400, response.get_data(as_text=True)[:300]


def test_a_huge_page_of_the_api_says_which_parameter(english, snapshot):
    response = english.get(f"/api/v1/registry?page={HUGE}")
    assert set(response.get_json()["errors"]) == {"page"}


def test_a_deep_page_within_bounds_is_empty_not_an_error(english, snapshot):
    response = english.get("/api/v1/registry?page=1000000")
    body = response.get_json()
    assert (response.status_code, body["items"], body["total"]) == (200, [], 1)


@pytest.mark.parametrize("path", ["/registry.csv", "/api/v1/registry"])
def test_a_date_alone_is_not_enough_once_the_session_chose_a_language(client, snapshot, path):
    def get(**headers):
        response = client.get(path, headers=headers)
        response.get_data()  # read the whole stream, then let it go
        response.close()
        return response

    first = get()
    modified = first.headers["Last-Modified"]
    # A client that only sends the date, with no language chosen: the URL decides, 304.
    assert get(**{"If-Modified-Since": modified}).status_code == 304
    with client.session_transaction() as browser:
        browser["locale"] = "en"
    again = get(**{"If-Modified-Since": modified})
    assert again.status_code == 200
    assert again.headers["ETag"] != first.headers["ETag"]


def test_export_file_is_named_after_the_snapshots_registry(english, session):
    coordinator = CoordinatorFactory()
    from review_portal.enums import RegistryKind as K

    admitted_program(coordinator=coordinator, requested_registry_kind=K.SIGNIFICANT)
    significant = publish_registry(K.SIGNIFICANT, coordinator)
    response = english.get(f"/registry.csv?snapshot={significant.id}")
    assert "registry-significant-1-" in response.headers["Content-Disposition"]
    # An explicit other kind finds no such publication, as on the page and in the API.
    for path in ("/registry", "/registry.csv", "/api/v1/registry"):
        assert english.get(f"{path}?snapshot={significant.id}&kind=certified").status_code == 404
