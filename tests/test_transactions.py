"""One transaction boundary per request (issue 18, item 3).

Views never commit or roll back: a request is committed once when its view returns
normally and rolled back when it raises (:mod:`review_portal.unit_of_work`); a domain error
reaches the user through the one error handler (:mod:`review_portal.main.errors`). What
must persist although an operation is refused is a savepoint inside the service.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from flask import Blueprint, get_flashed_messages
from sqlalchemy import func, select

from review_portal.enums import AssignmentStatus, SheetStatus
from review_portal.errors import InvalidInput
from review_portal.extensions import db
from review_portal.organizations.models import Municipality
from review_portal.scoring.models import ScoreSheet
from review_portal.scoring.services import (
    SheetInput,
    SheetLocked,
    SubmissionRefused,
    save_and_submit_sheet,
)
from tests import factories
from tests.conftest import migrated_app

PACKAGE = Path(__file__).resolve().parent.parent / "review_portal"


def _route_modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*routes*.py")) + [PACKAGE / "registry" / "api.py"]


def test_no_route_module_commits_or_rolls_back():
    offenders = []
    for path in _route_modules():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in {"commit", "rollback"}
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "session"
            ):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert len(_route_modules()) > 20
    assert offenders == []


# --- the boundary, on an application with a test-only blueprint ------------------------------

probe = Blueprint("txn_probe", __name__)


def _write(name: str) -> None:
    db.session.add(Municipality(name=name))
    db.session.flush()


@probe.post("/_txn/ok")
def write_and_return():
    _write("Записано и возвращено")
    return {"status": "ok"}


@probe.post("/_txn/refused")
def write_then_refuse():
    _write("Записано и отказано")
    raise InvalidInput("Значение не подходит.")


@probe.post("/_txn/abort")
def write_then_abort():
    from flask import abort

    _write("Записано и прервано")
    abort(409)


@probe.get("/_txn/back")
def back():
    return {"flashed": [message for _category, message in get_flashed_messages(True)]}


@pytest.fixture
def probe_app(scratch_database_url, tmp_path):
    """A migrated application on its own database (requests really commit), with the
    probe blueprint and without CSRF tokens."""
    with migrated_app(scratch_database_url, tmp_path, WTF_CSRF_ENABLED=False) as app:
        app.register_blueprint(probe)
        yield app


def _names(app) -> set[str]:
    with app.app_context():
        names = set(db.session.execute(select(Municipality.name)).scalars())
        db.session.remove()
        return names


def test_a_view_that_returns_normally_is_committed(probe_app):
    response = probe_app.test_client().post("/_txn/ok")
    assert response.status_code == 200
    assert "Записано и возвращено" in _names(probe_app)


def test_a_view_that_raises_after_writing_leaves_nothing(probe_app):
    client = probe_app.test_client()
    assert client.post("/_txn/refused").status_code == 422
    assert client.post("/_txn/abort").status_code == 409
    assert _names(probe_app).isdisjoint({"Записано и отказано", "Записано и прервано"})


def test_a_domain_error_is_json_for_a_json_client(probe_app):
    response = probe_app.test_client().post("/_txn/refused", headers={"Accept": "application/json"})
    assert response.status_code == 422
    assert response.get_json() == {"status": "error", "message": "Значение не подходит."}


def test_a_domain_error_after_a_form_is_flashed_on_the_page_it_came_from(probe_app):
    client = probe_app.test_client()
    response = client.post(
        "/_txn/refused", data={"x": "1"}, headers={"Referer": "http://localhost/_txn/back"}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/_txn/back"
    assert client.get("/_txn/back").get_json() == {"flashed": ["Значение не подходит."]}
    # Another site's page is never where the user is sent back to.
    elsewhere = client.post(
        "/_txn/refused", data={"x": "1"}, headers={"Referer": "https://evil.example/form"}
    )
    assert elsewhere.status_code == 422
    assert "Записано и отказано" not in _names(probe_app)


# --- what a refused submission keeps: a savepoint in the service ----------------------------


def _ready_input(assignment, **changes) -> SheetInput:
    data = SheetInput(
        revision=0,
        scores=factories.with_total(20),
        recommendations="Рекомендации эксперта по программе.",
        confirmed=True,
    )
    for name, value in changes.items():
        setattr(data, name, value)
    return data


def _sheets(assignment) -> int:
    return db.session.execute(
        select(func.count(ScoreSheet.id)).where(ScoreSheet.assignment_id == assignment.id)
    ).scalar_one()


def test_a_submission_refused_for_its_fields_keeps_the_draft(app, session):
    _review, (assignment, _other) = factories.scored_review(
        factories.with_total(20), factories.with_total(20), submit=False
    )
    with pytest.raises(SubmissionRefused) as refused:
        save_and_submit_sheet(
            assignment, assignment.expert, _ready_input(assignment, confirmed=False)
        )
    assert set(refused.value.errors) == {"confirmation"}
    sheet = db.session.execute(
        select(ScoreSheet).where(ScoreSheet.assignment_id == assignment.id)
    ).scalar_one()
    assert sheet.status == SheetStatus.DRAFT and sheet.revision == 1
    assert assignment.status == AssignmentStatus.ACCEPTED


def test_a_submission_to_a_withdrawn_assignment_keeps_nothing(app, session):
    _review, (assignment, _other) = factories.scored_review(
        factories.with_total(20), factories.with_total(20), submit=False
    )
    assignment.status = AssignmentStatus.WITHDRAWN
    db.session.flush()
    with pytest.raises(SheetLocked):
        save_and_submit_sheet(assignment, assignment.expert, _ready_input(assignment))
    assert _sheets(assignment) == 0
