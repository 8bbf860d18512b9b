"""The registry API: its OpenAPI document is valid and every real answer (200, 400, 404,
empty and filtered) matches the schema the document gives for it; paging, the snapshots,
the difference between two snapshots and conditional requests."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from review_portal.enums import Direction, Level, RegistryKind, StudyForm
from review_portal.extensions import db
from review_portal.registry.models import RegistrySnapshot
from review_portal.registry.openapi import openapi_document
from review_portal.registry.queries import RegistryFilters, page_items
from review_portal.registry.services import exclude_program, leave_registry, publish_registry
from tests.factories import CoordinatorFactory, MunicipalityFactory, admitted_program
from tests.test_registry_exports import later, reissue

DOCUMENT_URI = "urn:review-portal:openapi"


@pytest.fixture(scope="module")
def document():
    """The document as built from the code (no request or database needed)."""
    return openapi_document()


class Contract:
    """Validates real answers against the document: the schema it gives for the answer's
    path and status, its ``$ref``s resolved inside the document."""

    def __init__(self, document):
        self.document = document
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(DOCUMENT_URI, resource)

    def response_schema(self, path: str, status: int) -> dict | None:
        responses = self.document["paths"][path]["get"]["responses"]
        assert str(status) in responses, f"{path} does not document {status}"
        response = responses[str(status)]
        if "$ref" in response:
            name = response["$ref"].rsplit("/", 1)[1]
            response = self.document["components"]["responses"][name]
        content = response.get("content")
        if content is None:
            return None
        return content["application/json"]["schema"]

    def check(self, response, path: str, status: int | None = None):
        status = status or response.status_code
        assert response.status_code == status
        schema = self.response_schema(path, status)
        if schema is None:
            assert response.get_data() == b""
            return None
        assert response.mimetype == "application/json"
        body = response.get_json()
        validator = Draft202012Validator(
            {"$schema": "https://json-schema.org/draft/2020-12/schema", **_rebase(schema)},
            registry=self.registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        errors = sorted(validator.iter_errors(body), key=str)
        assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]
        return body


def _rebase(schema):
    """``#/components/...`` references made absolute (they point into the document)."""
    if isinstance(schema, dict):
        return {
            k: (DOCUMENT_URI + v if k == "$ref" and v.startswith("#") else _rebase(v))
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_rebase(v) for v in schema]
    return schema


@pytest.fixture(scope="module")
def contract(document):
    return Contract(document)


@pytest.fixture
def three(session):
    """Three programs (two in one municipality) published as the first snapshot."""
    coordinator = CoordinatorFactory()
    north, south = MunicipalityFactory(name="Северный"), MunicipalityFactory(name="Южный")
    from tests.factories import OrganizationFactory

    made = []
    for title, municipality, direction, level, ages, form, ovz, percent in [
        ("Робототехника", north, Direction.TECHNICAL, Level.BASIC, (7, 11), StudyForm.FULL_TIME,
         False, "81.00"),
        ("Юный эколог", south, Direction.NATURAL_SCIENCE, Level.INTRODUCTORY, (5, 9),
         StudyForm.PART_TIME, True, "90.50"),
        ("Театральная студия", north, Direction.ARTS, Level.ADVANCED, (12, 17),
         StudyForm.DISTANCE, True, "75.00"),
    ]:  # fmt: skip
        made.append(
            admitted_program(
                percent=percent,
                coordinator=coordinator,
                title=title,
                organization=OrganizationFactory(municipality=municipality),
                direction=direction,
                level=level,
                age_min=ages[0],
                age_max=ages[1],
                study_form=form,
                adapted_for_disabilities=ovz,
            )
        )
    snapshot = publish_registry(RegistryKind.CERTIFIED, coordinator)
    return SimpleNamespace(
        coordinator=coordinator,
        north=north,
        south=south,
        programs=[m[0] for m in made],
        conclusions=[m[1] for m in made],
        snapshot=snapshot,
    )


# --- the document ---------------------------------------------------------------------------


def test_openapi_document_is_valid_openapi_3_1(client, contract):
    response = client.get("/api/v1/openapi.json")
    contract.check(response, "/openapi.json", 200)
    served = response.get_json()
    validate(served)
    assert served["openapi"] == "3.1.0"
    assert set(served["paths"]) == {
        "/registry",
        "/registry/snapshots",
        "/registry/diff",
        "/openapi.json",
    }
    assert (
        client.get(
            "/api/v1/openapi.json", headers={"If-None-Match": response.headers["ETag"]}
        ).status_code
        == 304
    )


def test_openapi_describes_every_parameter_with_its_values(document):
    params = document["components"]["parameters"]
    registry = document["paths"]["/registry"]["get"]["parameters"]
    names = {params[p["$ref"].rsplit("/", 1)[1]]["name"] for p in registry}
    assert names == {
        "q", "municipality", "direction", "level", "age", "form", "ovz", "sort", "kind",
        "snapshot", "page", "per_page", "lang", "If-None-Match", "If-Modified-Since",
    }  # fmt: skip
    assert params["direction"]["schema"]["enum"] == [d.value for d in Direction]
    assert params["level"]["schema"]["enum"] == ["introductory", "basic", "advanced"]
    assert params["form"]["schema"]["enum"] == [f.value for f in StudyForm]
    assert params["kind"]["schema"]["enum"] == [k.value for k in RegistryKind]
    assert "percent" in params["sort"]["schema"]["enum"]
    assert (params["age"]["schema"]["minimum"], params["age"]["schema"]["maximum"]) == (3, 18)
    assert params["per_page"]["schema"]["maximum"] == 500
    assert params["page"]["schema"]["minimum"] == 1
    assert params["from"]["required"] and params["to"]["required"]
    item = document["components"]["schemas"]["RegistryItem"]
    assert item["additionalProperties"] is False
    assert set(item["required"]) == set(item["properties"])
    for path in document["paths"].values():
        responses = path["get"]["responses"]
        assert "200" in responses
    for path in ("/registry", "/registry/diff"):
        assert {"200", "304", "400", "404"} <= set(document["paths"][path]["get"]["responses"])


# --- /api/v1/registry -----------------------------------------------------------------------


def test_registry_before_any_publication_is_empty(client, session, contract):
    admitted_program(title="Не опубликована")
    body = contract.check(client.get("/api/v1/registry"), "/registry", 200)
    assert body == {"items": [], "page": 1, "per_page": 50, "total": 0, "snapshot": None}


def test_registry_items_have_the_documented_shape(client, three, contract):
    response = client.get("/api/v1/registry")
    body = contract.check(response, "/registry", 200)
    assert body["total"] == 3 and body["page"] == 1 and body["per_page"] == 50
    assert body["snapshot"]["id"] == three.snapshot.id
    assert body["snapshot"]["kind"] == "certified" and body["snapshot"]["number"] == 1
    assert body["snapshot"]["entry_count"] == 3
    first = body["items"][0]
    conclusion = three.conclusions[0]
    assert first["title"] == "Робототехника"
    assert first["registry_number"].endswith("-000001")
    assert first["municipality"] == {"id": three.north.id, "name": "Северный"}
    assert first["organization"]["inn"] == three.programs[0].organization.inn
    assert first["direction"]["code"] == "technical"
    assert first["ages"] == {"min": 7, "max": 11}
    assert first["study_form"]["code"] == "full_time"
    assert first["adapted_for_disabilities"] is False
    assert first["final_percent"] == 81.0
    assert first["status"]["code"] == "included"
    assert first["conclusion"]["number"] == conclusion.number
    public = client.application.config["PUBLIC_URL"]
    assert first["conclusion"]["verify_url"] == f"{public}/verify/{conclusion.number}"
    assert first["conclusion"]["pdf_url"] == f"{public}/verify/{conclusion.number}.pdf"
    assert client.get(f"/verify/{conclusion.number}").status_code == 200
    assert response.headers["ETag"] and response.headers["Last-Modified"]


def test_registry_labels_follow_the_language(client, three, english):
    body = english.get("/api/v1/registry").get_json()
    assert body["items"][0]["direction"]["label"] == "Technical"
    assert body["items"][0]["level"]["label"] == "Basic"


def test_registry_language_parameter_changes_the_answer(client, three):
    russian = client.get("/api/v1/registry")
    english = client.get("/api/v1/registry?lang=en")
    assert english.get_json()["items"][0]["direction"]["label"] == "Technical"
    assert english.headers["ETag"] != russian.headers["ETag"]


def test_registry_pages(client, three, contract):
    page2 = contract.check(client.get("/api/v1/registry?per_page=2&page=2"), "/registry", 200)
    assert (page2["total"], page2["page"], page2["per_page"]) == (3, 2, 2)
    assert [i["title"] for i in page2["items"]] == ["Театральная студия"]
    page1 = client.get("/api/v1/registry?per_page=2").get_json()
    assert [i["title"] for i in page1["items"]] == ["Робототехника", "Юный эколог"]
    beyond = contract.check(client.get("/api/v1/registry?per_page=2&page=9"), "/registry", 200)
    assert beyond["items"] == [] and beyond["total"] == 3
    expected = page_items(three.snapshot.id, RegistryFilters(sort="percent"), 2, 1).items
    one = client.get("/api/v1/registry?per_page=1&page=2&sort=percent").get_json()
    assert [i["registry_number"] for i in one["items"]] == [expected[0]["registry_number"]]
    assert one["items"][0]["title"] == "Робототехника"


@pytest.mark.parametrize(
    ("query", "titles"),
    [
        ("municipality={north}&ovz=1", ["Театральная студия"]),
        ("age=9&q=ЭКОЛОГ", ["Юный эколог"]),
        ("age=11", ["Робототехника"]),
        ("age=12", ["Театральная студия"]),
        ("direction=arts&level=advanced&form=distance", ["Театральная студия"]),
        ("ovz=0&sort=title", ["Робототехника"]),
        ("sort=percent", ["Юный эколог", "Робототехника", "Театральная студия"]),
        ("q=нет+такой", []),
    ],
)
def test_registry_filters(client, three, contract, query, titles):
    query = query.format(north=three.north.id)
    body = contract.check(client.get(f"/api/v1/registry?{query}"), "/registry", 200)
    assert [i["title"] for i in body["items"]] == titles
    assert body["total"] == len(titles)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("age=2", "age"),
        ("age=19", "age"),
        ("age=seven", "age"),
        ("per_page=501", "per_page"),
        ("per_page=0", "per_page"),
        ("page=0", "page"),
        ("direction=cooking", "direction"),
        ("level=expert", "level"),
        ("form=online", "form"),
        ("ovz=2", "ovz"),
        ("sort=random", "sort"),
        ("kind=secret", "kind"),
        ("municipality=north", "municipality"),
        ("municipality=99999999999", "municipality"),
        ("snapshot=first", "snapshot"),
        ("q=" + "я" * 201, "q"),
        ("lang=de", "lang"),
        ("lang=", "lang"),
        ("age=9&age=10", "age"),
        ("q=робот&q=театр", "q"),
    ],
)
def test_registry_rejects_invalid_parameters(client, three, contract, query, field):
    body = contract.check(client.get(f"/api/v1/registry?{query}"), "/registry", 400)
    assert list(body["errors"]) == [field]


def test_registry_errors_are_in_russian(client, three):
    body = client.get("/api/v1/registry?per_page=501").get_json()
    message = body["errors"]["per_page"][0]
    assert "500" in message


def test_registry_unknown_snapshot_is_json_404(client, three, contract):
    body = contract.check(client.get("/api/v1/registry?snapshot=999999"), "/registry", 404)
    assert body["error"]


def test_registry_unknown_municipality_is_404_on_the_api_and_the_page(client, three, contract):
    """A well-formed id that names no municipality is a missing object, as an unknown
    snapshot is, not an invalid parameter (the document types it as an integer)."""
    contract.check(client.get("/api/v1/registry?municipality=999999"), "/registry", 404)
    assert client.get("/registry?municipality=999999").status_code == 404
    body = client.get(f"/api/v1/registry?municipality={three.north.id}").get_json()
    assert sorted(i["title"] for i in body["items"]) == ["Робототехника", "Театральная студия"]


def test_registry_empty_filters_are_left_out(client, three, contract):
    """The page's search form sends the filters nobody chose empty; so may an API client."""
    query = "q=&municipality=&direction=&level=&age=&form=&ovz=&snapshot=&page=&per_page="
    body = contract.check(client.get(f"/api/v1/registry?{query}"), "/registry", 200)
    assert body["total"] == 3 and body["page"] == 1 and body["per_page"] == 50
    body = contract.check(client.get("/api/v1/registry/snapshots?kind="), "/registry/snapshots")
    assert [s["id"] for s in body["items"]] == [three.snapshot.id]


@pytest.mark.parametrize(
    "path", ["/registry?q=a%00b", "/registry/snapshots?kind=%07", "/openapi.json?x=%00"]
)
def test_control_characters_are_a_documented_400(client, three, contract, path):
    response = client.get(f"/api/v1{path}")
    body = contract.check(response, path.partition("?")[0], 400)
    assert set(body) == {"error", "message"} and "NUL" in body["message"]


def test_unknown_api_path_is_json_404(client, session, contract):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404 and response.mimetype == "application/json"
    assert set(response.get_json()) == {"error", "message"}


def test_registry_conditional_requests(client, three, contract):
    response = client.get("/api/v1/registry?age=9")
    etag, modified = response.headers["ETag"], response.headers["Last-Modified"]
    for headers in ({"If-None-Match": etag}, {"If-Modified-Since": modified}):
        again = client.get("/api/v1/registry?age=9", headers=headers)
        contract.check(again, "/registry", 304)
        assert again.headers["ETag"] == etag
    assert client.get("/api/v1/registry?age=10", headers={"If-None-Match": etag}).status_code == 200
    admitted_program(title="Вторая публикация", coordinator=three.coordinator)
    later(publish_registry(RegistryKind.CERTIFIED, three.coordinator))
    for headers in ({"If-None-Match": etag}, {"If-Modified-Since": modified}):
        fresh = client.get("/api/v1/registry?age=9", headers=headers)
        assert fresh.status_code == 200
        assert fresh.get_json()["snapshot"]["number"] == 2
    # The old snapshot by id is still the same answer.
    old = client.get(f"/api/v1/registry?snapshot={three.snapshot.id}").get_json()
    assert old["total"] == 3 and old["snapshot"]["number"] == 1


# --- /api/v1/registry/snapshots -------------------------------------------------------------


def test_snapshots_newest_first(client, three, contract):
    admitted_program(title="Вторая публикация", coordinator=three.coordinator)
    second = later(publish_registry(RegistryKind.CERTIFIED, three.coordinator))
    body = contract.check(client.get("/api/v1/registry/snapshots"), "/registry/snapshots", 200)
    assert [(s["id"], s["number"], s["entry_count"]) for s in body["items"]] == [
        (second.id, 2, 4),
        (three.snapshot.id, 1, 3),
    ]
    general = client.get("/api/v1/registry/snapshots?kind=general")
    assert contract.check(general, "/registry/snapshots", 200) == {"items": []}
    bad = client.get("/api/v1/registry/snapshots?kind=nope")
    assert list(contract.check(bad, "/registry/snapshots", 400)["errors"]) == ["kind"]
    response = client.get("/api/v1/registry/snapshots?kind=certified")
    tag = response.headers["ETag"]
    unchanged = client.get(
        "/api/v1/registry/snapshots?kind=certified", headers={"If-None-Match": tag}
    )
    contract.check(unchanged, "/registry/snapshots", 304)


def test_snapshots_of_an_unpublished_registry(client, session, contract):
    body = contract.check(client.get("/api/v1/registry/snapshots"), "/registry/snapshots", 200)
    assert body == {"items": []}


# --- /api/v1/registry/diff ------------------------------------------------------------------


def test_diff_lists_added_removed_and_changed(client, three, contract):
    robotics, ecology, theatre = three.programs
    coordinator = three.coordinator
    admitted_program(title="Новая программа", coordinator=coordinator)
    # Removed: the theatre's program is excluded by the center.
    exclude_program(theatre.current_review, coordinator, "Программа не реализуется")
    # Changed: the robotics conclusion is replaced by a new one with another score.
    new_conclusion = reissue(robotics, coordinator, "93.00")
    second = later(publish_registry(RegistryKind.CERTIFIED, coordinator))

    query = f"from={three.snapshot.id}&to={second.id}"
    response = client.get(f"/api/v1/registry/diff?{query}")
    body = contract.check(response, "/registry/diff", 200)
    assert body["from"]["id"] == three.snapshot.id and body["to"]["id"] == second.id
    assert [i["title"] for i in body["added"]] == ["Новая программа"]
    assert body["added"][0]["registry_number"].endswith("-000004")
    assert [i["title"] for i in body["removed"]] == ["Театральная студия"]
    assert len(body["changed"]) == 1
    changed = body["changed"][0]
    assert changed["title"] == "Робототехника"
    assert changed["registry_number"].endswith("-000001")
    assert changed["fields"]["final_percent"] == {"old": 81.0, "new": 93.0}
    assert changed["fields"]["conclusion_number"] == {
        "old": three.conclusions[0].number,
        "new": new_conclusion.number,
    }
    assert set(changed["fields"]) <= {"final_percent", "conclusion_number", "conclusion_date"}

    tag = response.headers["ETag"]
    unchanged = client.get(f"/api/v1/registry/diff?{query}", headers={"If-None-Match": tag})
    contract.check(unchanged, "/registry/diff", 304)
    reverse = client.get(
        f"/api/v1/registry/diff?from={second.id}&to={three.snapshot.id}",
        headers={"If-None-Match": tag},
    )
    body = contract.check(reverse, "/registry/diff", 200)
    assert [i["title"] for i in body["removed"]] == ["Новая программа"]
    assert [i["title"] for i in body["added"]] == ["Театральная студия"]

    # Nothing changed between a snapshot and itself.
    same = client.get(f"/api/v1/registry/diff?from={second.id}&to={second.id}")
    body = contract.check(same, "/registry/diff", 200)
    assert body["added"] == body["removed"] == body["changed"] == []


def test_diff_leave_registry_is_a_removal(client, three, contract):
    leave_registry(three.programs[1].id, three.coordinator, "Заключение отозвано")
    second = later(publish_registry(RegistryKind.CERTIFIED, three.coordinator))
    body = client.get(f"/api/v1/registry/diff?from={three.snapshot.id}&to={second.id}")
    body = contract.check(body, "/registry/diff", 200)
    assert [i["title"] for i in body["removed"]] == ["Юный эколог"]
    assert body["added"] == [] and body["changed"] == []


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("", ["from", "to"]),
        ("from={first}", ["to"]),
        ("from=one&to={first}", ["from"]),
        ("from={first}&to=-1", ["to"]),
        ("from={first}&to={other}", ["to"]),
    ],
)
def test_diff_rejects_invalid_parameters(client, three, contract, query, fields):
    other = RegistrySnapshot(
        kind=RegistryKind.GENERAL, number=1, published_by_id=three.coordinator.id
    )
    db.session.add(other)
    db.session.flush()
    query = query.format(first=three.snapshot.id, other=other.id)
    body = contract.check(client.get(f"/api/v1/registry/diff?{query}"), "/registry/diff", 400)
    assert sorted(body["errors"]) == fields


def test_diff_of_an_unknown_snapshot_is_json_404(client, three, contract):
    response = client.get(f"/api/v1/registry/diff?from={three.snapshot.id}&to=999999")
    assert contract.check(response, "/registry/diff", 404)["error"]
    response = client.get(f"/api/v1/registry/diff?from=999999&to={three.snapshot.id}")
    contract.check(response, "/registry/diff", 404)


def test_the_contract_catches_drift(client, three, contract):
    """The schemas are strict: an answer with an unknown or a missing key fails them."""
    response = client.get("/api/v1/registry")
    body = response.get_json()
    body["items"][0]["rating"] = 5
    del body["items"][1]["ages"]
    validator = Draft202012Validator(
        _rebase(contract.response_schema("/registry", 200)), registry=contract.registry
    )
    messages = sorted(e.message for e in validator.iter_errors(body))
    assert len(messages) == 2
    assert any("rating" in m for m in messages) and any("ages" in m for m in messages)
