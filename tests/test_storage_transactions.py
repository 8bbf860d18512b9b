"""No file outlives its transaction (issue 21, item 4c).

A conclusion's PDF or an upload is written to the storage before the row naming it is
committed. An error between the write and the commit — raised by the code that follows the
write, or by the commit itself — must leave no file behind, consume no conclusion number,
and must not delete a file that was on disk before with the same content (it may be another
row's). The applications here really commit (scratch databases, SQLite and PostgreSQL).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from review_portal import storage
from review_portal.accounts.models import User
from review_portal.conclusions import render
from review_portal.conclusions import services as conclusion_services
from review_portal.conclusions.models import Conclusion, ConclusionCounter
from review_portal.conclusions.services import (
    issue_conclusion,
    local_now,
    prepare_conclusion,
    take_number,
)
from review_portal.extensions import db
from review_portal.programs import documents
from review_portal.programs.models import Program, ProgramDocument, StoredFile
from review_portal.reviews.models import Review
from review_portal.reviews.services import decide_review
from review_portal.unit_of_work import unit_of_work
from review_portal.workflow import ReviewState
from tests import factories


class Injected(RuntimeError):
    """The fault a test injects between the file write and the commit."""


def files_on_disk(app) -> set[Path]:
    root = Path(app.config["STORAGE_DIR"]) / "files"
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


@pytest.fixture(autouse=True)
def quick_render(monkeypatch):
    """A PDF of the conclusion's number instead of WeasyPrint's (what is rendered does
    not matter here, only where the bytes go; each number gives other bytes)."""

    def render_pdf(content):
        return b"%PDF-1.7\n% conclusion " + content["number"].encode() + b"\n%%EOF\n"

    monkeypatch.setattr(render, "render_pdf", render_pdf)


@pytest.fixture
def world(scratch_app):
    """A review awaiting its decision and a coordinator, committed: ``(review id, user id)``."""
    with scratch_app.app_context():
        coordinator = factories.CoordinatorFactory()
        review, _ = factories.scored_review(factories.with_total(16), factories.with_total(15))
        assert review.state == ReviewState.AWAITING_DECISION
        # A first conclusion this year, so the counter row exists and shows where it is.
        first = factories.CoordinatorFactory()
        other, _ = factories.scored_review(factories.with_total(16), factories.with_total(16))
        decide_review(other, first, other.computed_decision)
        db.session.commit()
        ids = review.id, coordinator.id
        db.session.remove()
    return ids


def counter_and_rows(app) -> tuple[int, int]:
    with app.app_context():
        last = db.session.execute(
            select(ConclusionCounter.last_value).where(ConclusionCounter.year == local_now().year)
        ).scalar_one()
        rows = db.session.execute(select(func.count()).select_from(Conclusion)).scalar_one()
        db.session.remove()
    return last, rows


class Fault:
    """Where the fault strikes, once :meth:`arm` is called: in the code after
    ``save_bytes`` (entering the registry), or in the commit itself (a ``before_commit``
    hook raising, as a database lost at that moment does)."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.armed = False

    def arm(self) -> None:
        self.armed = True

    def after_write(self, *args, **kwargs):
        if self.armed:
            raise Injected("the database went away after the file was written (test)")
        return self.real(*args, **kwargs)

    def before_commit(self, session) -> None:
        if self.armed:
            raise Injected("the commit failed (test)")


@pytest.fixture(params=["after-write", "at-commit"])
def fault(request, monkeypatch):
    fault = Fault(request.param)
    if request.param == "after-write":
        fault.real = conclusion_services.enter_registry
        monkeypatch.setattr(conclusion_services, "enter_registry", fault.after_write)
        yield fault
        return
    sa.event.listen(sa.orm.Session, "before_commit", fault.before_commit)
    try:
        yield fault
    finally:
        sa.event.remove(sa.orm.Session, "before_commit", fault.before_commit)


def test_a_failed_decision_leaves_no_pdf_and_no_number(scratch_app, world, fault, monkeypatch):
    review_id, coordinator_id = world
    before_files = files_on_disk(scratch_app)
    before = counter_and_rows(scratch_app)
    written: list[str] = []
    real_save = storage.save_bytes

    def save_bytes(data):
        sha256, size = real_save(data)
        written.append(sha256)
        return sha256, size

    monkeypatch.setattr(storage, "save_bytes", save_bytes)
    fault.arm()
    with scratch_app.app_context():
        try:
            with pytest.raises(Injected), unit_of_work():
                review = db.session.get(Review, review_id)
                decide_review(
                    review, db.session.get(User, coordinator_id), review.computed_decision
                )
        finally:
            db.session.remove()

    assert len(written) == 1, "the PDF was rendered and written before the fault"
    assert not storage_path(scratch_app, written[0]).exists()
    assert files_on_disk(scratch_app) == before_files
    assert counter_and_rows(scratch_app) == before == (1, 1)


def storage_path(app, sha256: str) -> Path:
    return Path(app.config["STORAGE_DIR"]) / "files" / sha256[:2] / sha256[2:4] / sha256


def test_a_failed_issue_keeps_a_file_that_was_there_before(scratch_app, world, fault):
    """The bulk path passes the PDF it rendered elsewhere: the same bytes were already a
    file of the storage (committed before), so the failed issue must not delete them."""
    review_id, coordinator_id = world
    pdf = b"%PDF-1.7\n% the same bytes twice (test)\n%%EOF\n"
    with scratch_app.app_context():
        with unit_of_work():
            sha256, _size = storage.save_bytes(pdf)
        db.session.remove()
    path = storage_path(scratch_app, sha256)
    assert path.read_bytes() == pdf
    before = counter_and_rows(scratch_app)

    fault.arm()
    with scratch_app.app_context():
        try:
            with pytest.raises(Injected), unit_of_work():
                review = db.session.get(Review, review_id)
                coordinator = db.session.get(User, coordinator_id)
                decide_review(review, coordinator, review.computed_decision, issue=False)
                now = local_now()
                number, _sequence = take_number(now.year)
                content = prepare_conclusion(review, number, now.date(), None)
                issue_conclusion(review, coordinator, pdf=pdf, content=content)
        finally:
            db.session.remove()

    assert path.read_bytes() == pdf
    assert counter_and_rows(scratch_app) == before


def test_a_commit_lost_in_flight_keeps_the_pdf_for_the_clean_up(scratch_app, world, caplog):
    """The database's ``COMMIT`` itself fails (the connection lost while it was in flight):
    the server may have applied it, so the PDF is kept rather than risk a committed
    conclusion without its file. Here the statement never reached the server (the engine's
    ``commit`` event raises before it goes), so nothing was committed, the file names no
    row, and ``storage-cleanup`` lists it once the grace period has passed."""
    from datetime import timedelta

    from review_portal.storage_cleanup import survey

    review_id, coordinator_id = world
    before_files = files_on_disk(scratch_app)
    before = counter_and_rows(scratch_app)

    def lost_in_flight(connection):
        connection.invalidate()  # as a lost connection is: never given out again
        raise Injected("the connection was lost during COMMIT (test)")

    with scratch_app.app_context():
        engine = db.engine
        sa.event.listen(engine, "commit", lost_in_flight)
        try:
            with pytest.raises(Injected), unit_of_work():
                review = db.session.get(Review, review_id)
                decide_review(
                    review, db.session.get(User, coordinator_id), review.computed_decision
                )
        finally:
            sa.event.remove(engine, "commit", lost_in_flight)
            db.session.remove()

    (kept,) = files_on_disk(scratch_app) - before_files
    assert kept.read_bytes().startswith(b"%PDF-1.7\n% conclusion ")
    assert "COMMIT failed in flight" in caplog.text
    assert counter_and_rows(scratch_app) == before
    with scratch_app.app_context():
        listed = [item.path for item in survey(grace=timedelta(0)).old]
        db.session.remove()
    assert listed == [kept]


def test_a_file_reused_by_another_transaction_is_not_deleted(scratch_app):
    """Two transactions store the same bytes; the one that created the file fails after
    the other found it there (and will commit a row naming it): the file stays. Had
    nobody used it since, it would have gone."""
    data = b"%PDF-1.7\n% stored by two at once (test)\n%%EOF\n"
    with scratch_app.app_context():
        sha256, _ = storage.save_bytes(data)
        with scratch_app.app_context():  # another request, with its own session
            assert storage.save_bytes(data) == (sha256, len(data))
            assert not db.session.info.get(storage.WRITTEN), "it created nothing"
            db.session.remove()
        db.session.rollback()
        assert storage.path_for(sha256).read_bytes() == data

        storage.path_for(sha256).unlink()
        storage.save_bytes(data)
        db.session.rollback()
        assert not storage.path_for(sha256).exists()
        db.session.remove()


def test_a_failed_upload_leaves_no_file(scratch_app, monkeypatch):
    """A program document uploaded through the page whose request fails after the file
    is stored (the audit write breaks): a 500, no document, no file."""
    scratch_app.config["WTF_CSRF_ENABLED"] = False
    with scratch_app.app_context():
        program = factories.ProgramFactory()
        owner = factories.ApplicantFactory(organization=program.organization)
        db.session.commit()
        program_id, email = program.id, owner.email
        db.session.remove()

    def broken(*args, **kwargs):
        raise Injected("the database went away after the upload was stored (test)")

    monkeypatch.setattr(documents, "record_event", broken)
    scratch_app.config["PROPAGATE_EXCEPTIONS"] = False
    client = scratch_app.test_client()
    login = client.post("/login", data={"email": email, "password": factories.PASSWORD})
    assert login.status_code == 302

    response = client.post(
        f"/programs/{program_id}/documents",
        data={
            "kind": "program",
            "file": (io.BytesIO(factories.MINIMAL_PDF), "program.pdf", "application/pdf"),
        },
        content_type="multipart/form-data",
    )

    assert response.status_code == 500
    assert files_on_disk(scratch_app) == set()
    with scratch_app.app_context():
        assert db.session.execute(select(func.count()).select_from(StoredFile)).scalar_one() == 0
        assert (
            db.session.execute(select(func.count()).select_from(ProgramDocument)).scalar_one() == 0
        )
        assert db.session.get(Program, program_id) is not None
        db.session.remove()
    assert not os.listdir(Path(scratch_app.config["STORAGE_DIR"]) / "files" / "incoming")
