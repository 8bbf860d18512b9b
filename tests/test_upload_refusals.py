"""Every upload route answers a refused file with 4xx and a clear Russian message, on its own
form page, and writes nothing: 413 for a file over the size limit (checked by the form, or a
request over ``MAX_CONTENT_LENGTH`` that werkzeug refuses before the view runs), 422 for
content refused.

The upload routes are the views marked with :func:`review_portal.forms.on_too_large`; a
guard checks that no other view can receive a file (every form with a file field and every
reader of ``request.files`` belongs to a marked view's module).
"""

from __future__ import annotations

import html
import io
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from review_portal.extensions import db
from tests.factories import ApplicantFactory, CoordinatorFactory, ProgramFactory
from tests.test_documents import EXECUTABLE

PACKAGE = Path(__file__).resolve().parent.parent / "review_portal"


@dataclass(frozen=True)
class Route:
    """An upload route: who posts, where, with which other fields, and what it says about
    refused content."""

    actor: str
    url: str
    fields: dict
    refused: bytes
    message: str


ROUTES = {
    "documents.upload": Route(
        "provider",
        "/programs/{program}/documents",
        {"kind": "program"},
        EXECUTABLE,
        "Принимаются только документы в форматах PDF, DOCX и ODT",
    ),
    "conclusions.check_upload": Route("anonymous", "/verify", {}, b"", "Файл пуст."),
    "imports.upload": Route("coordinator", "/import", {"kind": "programs"}, b"", "Файл пуст."),
    "experts.import_experts": Route("coordinator", "/experts/import", {}, b"", "Файл пуст."),
    "appeals.new": Route(
        "provider",
        "/conclusions/{conclusion}/appeal",
        {"reason_C1": "Цель программы указана в разделе 1.2."},
        EXECUTABLE,
        "Принимаются только документы в форматах PDF, DOCX и ODT",
    ),
}


def test_the_upload_routes_are_the_marked_views(app):
    marked = {name for name, view in app.view_functions.items() if hasattr(view, "on_too_large")}
    assert marked == set(ROUTES)


def test_no_other_view_can_receive_a_file(app):
    """A new form with a file field, or a new reader of ``request.files``, belongs to a
    module of a marked view (then mark it and list it above)."""
    import review_portal  # noqa: F401 - the forms are imported with the app

    modules = {app.view_functions[name].__module__.rsplit(".", 1)[0] for name in ROUTES}
    stack, with_files = list(FlaskForm.__subclasses__()), set()
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__module__.startswith("review_portal") and any(
            getattr(value, "field_class", None) is FileField for value in vars(cls).values()
        ):
            with_files.add(cls.__module__.rsplit(".", 1)[0])
    readers = {
        ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
        for path in PACKAGE.rglob("*.py")
        if "request.files" in path.read_text(encoding="utf-8")
    }
    assert with_files | readers <= modules, (with_files | readers) - modules


@pytest.fixture
def world(session):
    program = ProgramFactory()
    return {
        "program": program,
        "provider": ApplicantFactory(organization=program.organization),
        "coordinator": CoordinatorFactory(),
    }


def appealable_conclusion(world):
    """A rejected conclusion of the world's provider organization (a real one: issued)."""
    from review_portal.reviews.services import decide_review
    from tests.factories import scored_review, with_total

    review, _ = scored_review(
        with_total(8), with_total(8), organization=world["program"].organization
    )
    decide_review(review, world["coordinator"], review.computed_decision)
    return review.conclusions[-1]


def row_count() -> int:
    return sum(
        db.session.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        for table in db.metadata.sorted_tables
    )


@pytest.fixture
def post_file(auth, world):
    """Sign in as the route's actor, count the rows, then ``send(content)`` posts a file."""

    def prepare(name: str):
        route = ROUTES[name]
        if route.actor != "anonymous":
            auth.login(world[route.actor])
        conclusion = appealable_conclusion(world) if "{conclusion}" in route.url else None
        url = route.url.format(
            program=world["program"].id, conclusion=conclusion.id if conclusion else None
        )
        token = auth.token(url if route.actor != "provider" else "/")

        def send(content: bytes):
            # Encoded here: the test client spools a big body to a temporary file it never
            # closes.
            boundary, body = encode_multipart(
                {
                    "csrf_token": token,
                    **route.fields,
                    "file": FileStorage(io.BytesIO(content), "file.pdf"),
                }
            )
            return auth.client.post(
                url, data=body, content_type=f'multipart/form-data; boundary="{boundary}"'
            )

        return send

    return prepare


def page_text(response) -> str:
    return html.unescape(re.sub(r"\s+", " ", response.get_data(as_text=True)))


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_refused_content_is_422_with_the_reason(post_file, name):
    send = post_file(name)
    before = row_count()

    response = send(ROUTES[name].refused)

    assert response.status_code == 422
    assert ROUTES[name].message in page_text(response)
    assert "Location" not in response.headers
    assert row_count() == before


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_a_file_over_the_size_limit_is_413(app, post_file, monkeypatch, name):
    send = post_file(name)
    monkeypatch.setitem(app.config, "MAX_UPLOAD_MB", 1)
    before = row_count()

    response = send(b"%PDF-" + b"0" * (1024 * 1024))

    assert response.status_code == 413
    assert "Размер файла превышает 1 МБ" in page_text(response)
    assert row_count() == before


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_a_request_over_the_request_limit_is_413_on_the_form_page(
    app, post_file, monkeypatch, name
):
    send = post_file(name)
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 1024)
    before = row_count()

    response = send(b"%PDF-" + b"0" * 4096)

    assert response.status_code == 413
    text = page_text(response)
    assert "Размер файла превышает 20 МБ" in text
    # The route's own form, ready for another file.
    assert 'type="file"' in text
    assert row_count() == before


def test_a_request_over_the_limit_elsewhere_is_413_in_russian(app, client, session, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 1024)
    response = client.post("/login", data={"email": "x" * 4096, "password": "y"})
    assert response.status_code == 413
    assert "Размер файла превышает 20 МБ" in page_text(response)
