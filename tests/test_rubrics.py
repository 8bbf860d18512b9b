"""Rubrics: the schema check of the files, the refusal of a changed rubric in use, the
coordinator's list, preview and choice of the active rubric per program type."""

from __future__ import annotations

import copy
import shutil

import pytest
import sqlalchemy as sa
import yaml

from review_portal import create_app
from review_portal.audit.models import AuditEvent
from review_portal.enums import ProgramType
from review_portal.extensions import db
from review_portal.rubrics.models import ActiveRubric, RubricRecord
from review_portal.rubrics.registry import (
    RUBRIC_DIR,
    active_rubric,
    get_rubric,
    rubric_files,
)
from review_portal.rubrics.schema import RubricError
from tests import factories

DEFAULT = yaml.safe_load((RUBRIC_DIR / "dop-general.yaml").read_text(encoding="utf-8"))


def write(folder, name: str, data) -> None:
    text = data if isinstance(data, str) else yaml.safe_dump(data, allow_unicode=True)
    (folder / name).write_text(text, encoding="utf-8")


def mutated(change) -> dict:
    data = copy.deepcopy(DEFAULT)
    change(data)
    return data


def _set(*path_and_value):
    *path, value = path_and_value

    def change(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def _delete(*path):
    def change(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return change


def test_default_rubric_model():
    rubric = get_rubric("dop-general", 1)
    assert (rubric.scale_min, rubric.scale_max) == (0, 2)
    assert rubric.scale_labels == {0: "не выражен", 1: "выражен частично", 2: "выражен полностью"}
    assert rubric.experts_per_review == 2
    assert rubric.comment_required_below == 2
    assert [c.id for c in rubric.criteria] == [
        "A1", "A2", "B1", "B2", "B3", "B4", "C1", "D1", "D2", "D3"
    ]  # fmt: skip
    assert [s.id for s in rubric.sections] == ["A", "B", "C", "D"]
    assert [c.id for c in rubric.criteria if c.blocking] == ["A1", "A2"]
    assert all(c.weight == 1 for c in rubric.criteria)
    assert rubric.max_total == 20
    assert (rubric.decision.admit_percent, rubric.decision.revision_percent) == (70, 50)
    assert rubric.decision.blocking_min == 1
    assert rubric.divergence.total_percent == 20
    assert rubric.divergence.decision_split is True
    assert rubric.divergence.criterion_points == 2
    assert rubric.divergence.resolution == "third_expert"
    assert rubric.final_score == "closest_pair_mean"
    assert rubric.program_types == {ProgramType.GENERAL_DEVELOPMENTAL}


def test_pre_professional_rubric_model():
    """The shipped rubric of pre-professional programs: the general criteria plus the federal
    requirements (blocking), settled by a discussion between the experts."""
    rubric = get_rubric("dop-preprofessional", 1)
    assert rubric.program_types == {ProgramType.PRE_PROFESSIONAL}
    assert [c.id for c in rubric.criteria if c.blocking] == ["A1", "A2", "A3"]
    assert "федеральным государственным требованиям" in rubric.criterion("A3").title
    assert rubric.max_total == 22
    assert rubric.divergence.resolution == "discussion"
    assert (rubric.decision.admit_percent, rubric.decision.revision_percent) == (70, 50)


def test_each_program_type_has_a_rubric_by_default(session):
    assert active_rubric(ProgramType.GENERAL_DEVELOPMENTAL).id == "dop-general"
    assert active_rubric(ProgramType.PRE_PROFESSIONAL).id == "dop-preprofessional"


def test_get_rubric_missing_names_it():
    with pytest.raises(KeyError, match="dop-general.*version 9"):
        get_rubric("dop-general", 9)


SCHEMA_CASES = [
    (_delete("title"), "title", "is required but missing"),
    (_set("version", "one"), "version", "must be of type integer"),
    (_set("version", 0), "version", "must be at least 1"),
    (_set("colour", "red"), "colour", "is not a known field"),
    (_set("program_types", ["kindergarten"]), "program_types[0]", "must be one of"),
    (_set("program_types", []), "program_types", "must not be empty"),
    (_set("scale", "min", "zero"), "scale.min", "must be of type integer"),
    (_set("sections", 1, "criteria", 0, "weight", 0), "sections[1].criteria[0].weight",
     "must be greater than 0"),
    (_set("sections", 1, "criteria", 0, "weight", -1), "sections[1].criteria[0].weight",
     "must be greater than 0"),
    (_delete("sections", 2, "criteria", 0, "weight"), "sections[2].criteria[0].weight",
     "is required but missing"),
    (_set("sections", 0, "criteria", 1, "blocking", "yes"), "sections[0].criteria[1].blocking",
     "must be of type boolean"),
    (_set("sections", 0, "criteria", 1, "title", "  "), "sections[0].criteria[1].title",
     "must not be blank"),
    (_set("sections", 3, "criteria", []), "sections[3].criteria", "must not be empty"),
    (_set("sections", 0, "criteria", 0, "id", "A 1"), "sections[0].criteria[0].id",
     "must match the pattern"),
    (_set("decision", "admit_percent", 120), "decision.admit_percent", "must be at most 100"),
    (_set("divergence", "resolution", "vote"), "divergence.resolution", "must be one of"),
    (_set("final_score", "median"), "final_score", "must be one of"),
    # The rules beyond the schema.
    (_set("scale", "max", 0), "scale.max", "must be greater than scale.min"),
    (_set("scale", "labels", {0: "нет", 1: "частично"}), "scale.labels", "has no label for 2"),
    (_set("scale", "labels", {0: "a", 1: "b", 2: "c", 3: "d"}), "scale.labels.3",
     "is outside the scale"),
    (_set("sections", 1, "id", "A"), "sections[1].id", "'A' is already the id of sections[0]"),
    (_set("sections", 2, "criteria", 0, "id", "B2"), "sections[2].criteria[0].id",
     "'B2' is already the id of sections[1].criteria[1]"),
    (_set("decision", "revision_percent", 70), "decision.revision_percent",
     "must be below decision.admit_percent"),
    (_set("decision", "blocking_min", 3), "decision.blocking_min", "must be within the scale"),
    (_set("decision", "blocking_min", 0), "decision.blocking_min", "must be within the scale"),
    (_set("comment_required_below", 5), "comment_required_below", "must be between 0 and 3"),
    (_set("divergence", "criterion_points", 3), "divergence.criterion_points",
     "must be at most 2"),
    # Floors, section minimums, conditional criteria, the notes column.
    (_set("decision", "floor_percent", 120), "decision.floor_percent", "must be at most 100"),
    (_set("decision", "floor_percent", 0), "decision.floor_percent", "must be greater than 0"),
    (_set("decision", "floor_percent", 80), "decision.floor_percent",
     "must be at most decision.admit_percent (70); got 80"),
    (_set("sections", 1, "min_percent", "half"), "sections[1].min_percent",
     "must be of type number"),
    (_set("sections", 1, "min_percent", 101), "sections[1].min_percent", "must be at most 100"),
    (_set("sections", 1, "criteria", 0, "applies_if", {"disability": True}),
     "sections[1].criteria[0].applies_if.disability", "is not a program field a rubric can test"),
    (_set("sections", 1, "criteria", 0, "applies_if", {"multi_level": "да"}),
     "sections[1].criteria[0].applies_if.multi_level", "must be one of: true, false; got 'да'"),
    (_set("sections", 1, "criteria", 0, "applies_if", {"short_term": "yes"}),
     "sections[1].criteria[0].applies_if.short_term", "must be one of: true, false; got 'yes'"),
    (_set("sections", 1, "criteria", 0, "applies_if", {"program_type": ["school"]}),
     "sections[1].criteria[0].applies_if.program_type", "must be one of: general_developmental"),
    (_set("sections", 1, "criteria", 0, "applies_if", {}), "sections[1].criteria[0].applies_if",
     "must not be empty"),
    (_set("notes_title", " "), "notes_title", "must not be blank"),
]  # fmt: skip


def _threshold_on_conditional_section(data):
    data["sections"][2]["min_percent"] = 50
    data["sections"][2]["criteria"][0]["applies_if"] = {"adapted_for_disabilities": True}


def _threshold_without_criteria(data):
    data["sections"][2]["min_percent"] = 50
    data["sections"][2]["criteria"] = []


def _every_criterion_conditional(data):
    for section in data["sections"]:
        for criterion in section["criteria"]:
            criterion["applies_if"] = {"short_term": True}


SCHEMA_CASES += [
    (_threshold_on_conditional_section, "sections[2].min_percent",
     "the section has no criterion that applies to every program"),
    (_threshold_without_criteria, "sections[2].criteria", "must not be empty"),
    (_every_criterion_conditional, "sections",
     "every criterion has applies_if; at least one must apply to every program"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "path", "problem"), SCHEMA_CASES)
def test_schema_error_names_file_and_field(tmp_path, change, path, problem):
    write(tmp_path, "broken-rubric.yaml", mutated(change))
    with pytest.raises(RubricError) as caught:
        rubric_files(tmp_path)
    assert f"broken-rubric.yaml: {path}: {problem}" in str(caught.value)


def test_schema_error_yaml_syntax_names_file(tmp_path):
    write(tmp_path, "bad-syntax.yaml", "id: [unclosed\n")
    with pytest.raises(RubricError, match=r"rubric file bad-syntax\.yaml: not valid YAML"):
        rubric_files(tmp_path)


def test_schema_error_not_a_mapping_names_file(tmp_path):
    write(tmp_path, "list.yaml", "- a\n- b\n")
    with pytest.raises(RubricError, match=r"list\.yaml: \(top level\): must be a mapping"):
        rubric_files(tmp_path)


def test_same_id_and_version_twice_names_both_files(tmp_path):
    write(tmp_path, "a.yaml", DEFAULT)
    write(tmp_path, "b.yaml", mutated(_set("title", "Другое название")))
    with pytest.raises(RubricError, match=r"b\.yaml: id 'dop-general' version 1 .* by a\.yaml"):
        rubric_files(tmp_path)


def test_second_version_beside_the_first_loads(tmp_path):
    shutil.copy(RUBRIC_DIR / "dop-general.yaml", tmp_path / "dop-general.yaml")
    v2 = mutated(_set("version", 2))
    v2["sections"][0]["criteria"][0]["weight"] = 1.5
    v2["program_types"] = ["general_developmental", "pre_professional"]
    write(tmp_path, "dop-general-v2.yaml", v2)
    files = rubric_files(tmp_path)
    assert list(files) == [("dop-general", 1), ("dop-general", 2)]
    assert files[("dop-general", 1)].sha256 == get_rubric("dop-general", 1).sha256
    assert str(files[("dop-general", 2)].criteria[0].weight) == "1.5"
    assert files[("dop-general", 2)].max_total == 21


def test_broken_file_stops_the_start(tmp_path):
    write(tmp_path, "broken.yaml", mutated(_set("sections", 0, "criteria", 0, "weight", 0)))
    with pytest.raises(RubricError, match=r"broken\.yaml: sections\[0\]\.criteria\[0\]\.weight"):
        create_app(
            "testing",
            SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'db.sqlite'}",
            RUBRIC_DIR=str(tmp_path),
        )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (_set("decision", "floor_percent", 150), "decision.floor_percent"),
        (
            _set("sections", 0, "criteria", 1, "applies_if", {"disabled": True}),
            "sections[0].criteria[1].applies_if.disabled",
        ),
        (_threshold_on_conditional_section, "sections[2].min_percent"),
    ],
)
def test_broken_floor_condition_or_threshold_stops_the_start(tmp_path, change, field):
    write(tmp_path, "regional.yaml", mutated(change))
    with pytest.raises(RubricError) as caught:
        create_app(
            "testing",
            SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'db.sqlite'}",
            RUBRIC_DIR=str(tmp_path),
        )
    assert f"regional.yaml: {field}: " in str(caught.value)


def test_start_on_empty_database_skips_the_comparison(scratch_database_url, tmp_path):
    app = create_app(
        "testing", SQLALCHEMY_DATABASE_URI=scratch_database_url, STORAGE_DIR=str(tmp_path)
    )
    with app.app_context():
        assert not sa.inspect(db.engine).has_table("rubric_records")
        db.engine.dispose()


def _record(app, rubric_id: str, version: int, sha256: str) -> None:
    with app.app_context():
        db.session.add(RubricRecord(rubric_id=rubric_id, version=version, sha256=sha256, title="t"))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


def _start(url, folder, tmp_path):
    app = create_app(
        "testing", SQLALCHEMY_DATABASE_URI=url, RUBRIC_DIR=str(folder), STORAGE_DIR=str(tmp_path)
    )
    with app.app_context():
        db.engine.dispose()
    return app


def test_changed_rubric_in_use_is_refused_at_start(scratch_app, scratch_database_url, tmp_path):
    folder = tmp_path / "rubrics"
    folder.mkdir()
    write(folder, "dop-general.yaml", mutated(_set("title", "Изменённое название")))
    _record(scratch_app, "dop-general", 1, get_rubric("dop-general", 1).sha256)
    with pytest.raises(RubricError) as caught:
        _start(scratch_database_url, folder, tmp_path)
    assert str(caught.value) == (
        "rubric file dop-general.yaml: rubric dop-general version 1 is in use and has "
        "changed; restore it and add a new version instead"
    )


def test_unchanged_rubric_in_use_and_changed_unused_one_start(
    scratch_app, scratch_database_url, tmp_path
):
    folder = tmp_path / "rubrics"
    folder.mkdir()
    shutil.copy(RUBRIC_DIR / "dop-general.yaml", folder / "dop-general.yaml")
    # Version 2 was edited, but no review has used it yet: that is allowed.
    write(folder, "dop-general-v2.yaml", mutated(_set("version", 2)))
    _record(scratch_app, "dop-general", 1, get_rubric("dop-general", 1).sha256)
    app = _start(scratch_database_url, folder, tmp_path)
    with app.app_context():
        assert set(rubric_files()) == {("dop-general", 1), ("dop-general", 2)}


# --- pages -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/rubrics", "/rubrics/dop-general/1"])
def test_pages_anonymous_go_to_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


@pytest.mark.parametrize(
    "factory",
    [factories.ApplicantFactory, factories.ExpertUserFactory, factories.MunicipalViewerFactory],
)
@pytest.mark.parametrize("path", ["/rubrics", "/rubrics/dop-general/1"])
def test_pages_forbidden_to_non_staff(session, auth, client, factory, path):
    auth.login(factory())
    assert client.get(path).status_code == 403


@pytest.mark.parametrize(
    "factory",
    [factories.ApplicantFactory, factories.ExpertUserFactory, factories.MunicipalViewerFactory],
)
def test_choose_active_forbidden_to_non_staff(session, auth, factory):
    auth.login(factory())
    response = auth.post(
        "/rubrics/active",
        {"program_type": "general_developmental", "rubric": "dop-general:1"},
    )
    assert response.status_code == 403
    assert session.get(ActiveRubric, (ProgramType.GENERAL_DEVELOPMENTAL, False)) is None


@pytest.mark.parametrize("factory", [factories.CoordinatorFactory, factories.AdminFactory])
def test_list_shows_rubrics_to_staff(session, auth, english, factory):
    auth.login(factory())
    html = english.get("/rubrics").get_data(as_text=True)
    row = html.split('id="rubric-dop-general-1"')[1].split("</tr>")[0]
    assert "<code>dop-general</code>" in row
    assert get_rubric("dop-general", 1).title in row
    assert "<td>General developmental</td>" in row
    assert "<td>no</td>" in row  # not in use yet
    assert row.rstrip().endswith("<td>General developmental</td>")  # active by default


def test_list_marks_rubric_in_use(session, auth, english):
    session.add(
        RubricRecord(
            rubric_id="dop-general",
            version=1,
            sha256=get_rubric("dop-general", 1).sha256,
            title="x",
        )
    )
    session.flush()
    auth.login(factories.CoordinatorFactory())
    html = english.get("/rubrics").get_data(as_text=True)
    row = html.split('id="rubric-dop-general-1"')[1].split("</tr>")[0]
    assert "<td>yes</td>" in row


def test_preview_shows_every_criterion_and_label(session, auth, client):
    auth.login(factories.CoordinatorFactory())
    response = client.get("/rubrics/dop-general/1")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    rubric = get_rubric("dop-general", 1)
    for section in rubric.sections:
        assert section.title in html
    for criterion in rubric.criteria:
        block = html.split(f'id="criterion-{criterion.id}"')[1].split("</fieldset>")[0]
        assert criterion.title in block
        for value, label in rubric.scale_labels.items():
            assert (
                f'name="score-{criterion.id}" id="score-{criterion.id}-{value}" value="{value}"'
                in (" ".join(block.split()))
            )
            assert f"{value} — {label}" in block
        assert f'name="comment-{criterion.id}" id="comment-{criterion.id}"' in block
        assert block.count("disabled") == len(rubric.scale_labels) + 1


def test_preview_of_missing_rubric_is_404(session, auth, client):
    auth.login(factories.CoordinatorFactory())
    assert client.get("/rubrics/dop-general/9").status_code == 404


def test_criteria_partial_shows_scores_comments_and_errors(app, session):
    from flask import render_template

    rubric = get_rubric("dop-general", 1)
    with app.test_request_context("/"):
        html = render_template(
            "rubrics/_criteria.html",
            rubric=rubric,
            scores={"A1": 1},
            comments={"A1": "Нет учебного плана"},
            errors={"B1": "Выберите оценку."},
        )
    a1 = " ".join(html.split('id="criterion-A1"')[1].split("</fieldset>")[0].split())
    assert 'id="score-A1-1" value="1" checked' in a1
    assert 'id="score-A1-0" value="0" checked' not in a1
    assert "Нет учебного плана</textarea>" in a1
    assert "disabled" not in a1
    b1 = html.split('id="criterion-B1"')[1].split("</fieldset>")[0]
    assert '<div class="invalid-feedback d-block" id="error-B1">Выберите оценку.</div>' in b1
    assert 'aria-describedby="error-B1"' in html


def test_choose_active_rubric_is_saved_and_audited(session, auth, english, tmp_path, app):
    coordinator = factories.CoordinatorFactory()
    auth.login(coordinator)
    response = auth.post(
        "/rubrics/active",
        {"program_type": "general_developmental", "rubric": "dop-general:1"},
        token_from="/rubrics",
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/rubrics")
    choice = session.get(ActiveRubric, (ProgramType.GENERAL_DEVELOPMENTAL, False))
    assert (choice.rubric_id, choice.rubric_version, choice.chosen_by_id) == (
        "dop-general",
        1,
        coordinator.id,
    )
    event = session.execute(
        sa.select(AuditEvent).where(AuditEvent.action == "rubric.activate")
    ).scalar_one()
    assert event.actor_id == coordinator.id
    assert event.object_id == "general_developmental"
    assert event.before is None
    assert event.after == {"rubric_id": "dop-general", "rubric_version": 1, "short_term": False}
    assert active_rubric(ProgramType.GENERAL_DEVELOPMENTAL).id == "dop-general"
    page = english.get("/rubrics").get_data(as_text=True)
    assert "The rubric dop-general v1 is now active for “General developmental”." in page


def test_choose_rubric_not_covering_the_type_is_refused(session, auth, english):
    auth.login(factories.CoordinatorFactory())
    response = auth.post(
        "/rubrics/active",
        {"program_type": "pre_professional", "rubric": "dop-general:1"},
        token_from="/rubrics",
    )
    assert response.status_code == 400
    assert (
        "The rubric dop-general v1 does not cover the program type “Pre-professional”."
        in response.get_data(as_text=True)
    )
    assert session.get(ActiveRubric, (ProgramType.PRE_PROFESSIONAL, False)) is None
    assert (
        session.execute(sa.select(AuditEvent).where(AuditEvent.action == "rubric.activate")).first()
        is None
    )


def test_choose_unknown_rubric_is_refused(session, auth):
    auth.login(factories.CoordinatorFactory())
    response = auth.post(
        "/rubrics/active",
        {"program_type": "general_developmental", "rubric": "nope:1"},
        token_from="/rubrics",
    )
    assert response.status_code == 400
    assert session.get(ActiveRubric, (ProgramType.GENERAL_DEVELOPMENTAL, False)) is None
