"""Bulk issuing of conclusions as a background job, on committed data (SQLite and
PostgreSQL): every conclusion issued once with consecutive numbers, rendered in other
processes; a job interrupted halfway (stopped by the test hook, or its process killed)
finishes the rest when run again; a render failure consumes no number; the job's page and
JSON show the progress to the staff only.

The tests on committed data do not use the per-test transaction (``session`` fixture): the
job's own transactions, threads and processes need real commits.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import Executor, Future
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from review_portal.accounts.models import User
from review_portal.audit.models import AuditEvent
from review_portal.conclusions import bulk, render
from review_portal.conclusions.models import Conclusion, ConclusionCounter
from review_portal.conclusions.services import stored_pdf
from review_portal.enums import ConclusionStatus, Decision
from review_portal.extensions import db
from review_portal.jobs.models import Job, JobStatus
from review_portal.jobs.services import run_job, start_in_background
from review_portal.reviews.models import Review
from review_portal.workflow import ReviewState
from tests import factories
from tests.processes import kill_job_midway

ROOT = Path(__file__).resolve().parent.parent


def seed(app, count: int, *, failing: tuple[int, ...] = ()) -> tuple[list[int], int]:
    """``count`` committed reviews awaiting a decision (experts scored 16 and 15: admitted),
    those at the positions ``failing`` titled "СБОЙ ...", and a coordinator."""
    with app.app_context():
        coordinator = factories.CoordinatorFactory(full_name="Координатор Пакетный")
        ids = []
        for i in range(count):
            title = f"{'СБОЙ ' if i in failing else ''}Программа пакета {i}"
            review, _ = factories.scored_review(
                factories.with_total(16), factories.with_total(15), title=title
            )
            assert review.state == ReviewState.AWAITING_DECISION
            ids.append(review.id)
        db.session.commit()
        coordinator_id = coordinator.id
        db.session.remove()
    return ids, coordinator_id


def make_job(app, review_ids: list[int], coordinator_id: int) -> int:
    with app.app_context():
        coordinator = db.session.get(User, coordinator_id)
        job, skipped = bulk.start_bulk_issue(review_ids, coordinator)
        assert skipped == []
        job_id = job.id
        db.session.commit()
        db.session.remove()
    return job_id


def issued(app) -> list[tuple[int, int, str]]:
    """``(sequence, review id, number)`` of every conclusion, by sequence."""
    with app.app_context():
        rows = db.session.execute(
            select(Conclusion.sequence, Conclusion.review_id, Conclusion.number).order_by(
                Conclusion.sequence
            )
        ).all()
        db.session.remove()
    return [tuple(row) for row in rows]


def counter(app) -> int:
    with app.app_context():
        value = db.session.execute(select(func.max(ConclusionCounter.last_value))).scalar()
        db.session.remove()
    return value or 0


def job_row(app, job_id: int) -> dict:
    with app.app_context():
        job = db.session.get(Job, job_id)
        row = {
            "status": job.status,
            "done": job.done,
            "total": job.total,
            "failed_items": list(job.failed_items),
            "error": job.error,
        }
        db.session.remove()
    return row


def number(sequence: int) -> str:
    """The number of that sequence this year (region code "00", the default)."""
    year = datetime.now(ZoneInfo("Europe/Moscow")).year
    return f"00-{year}-{sequence:05d}"


def assert_issued_in_order(app, review_ids: list[int]) -> None:
    """Each review has exactly one conclusion; numbers 1..n, in the order of the reviews."""
    rows = issued(app)
    assert [s for s, _r, _n in rows] == list(range(1, len(review_ids) + 1))
    assert [r for _s, r, _n in rows] == review_ids
    assert [n for _s, _r, n in rows] == [number(i) for i in range(1, len(review_ids) + 1)]
    assert counter(app) == len(review_ids)


# --- the whole job --------------------------------------------------------------------------


def test_bulk_job_issues_each_conclusion_once_with_consecutive_numbers(scratch_app, monkeypatch):
    """The embedded runner (a thread) and two rendering processes, as in production."""
    monkeypatch.setitem(scratch_app.config, "JOBS_RUNNER", "thread")
    monkeypatch.setitem(scratch_app.config, "CONCLUSION_WORKERS", 2)
    ids, coordinator_id = seed(scratch_app, 8)
    job_id = make_job(scratch_app, ids, coordinator_id)
    assert job_row(scratch_app, job_id)["status"] == JobStatus.QUEUED

    thread = start_in_background(scratch_app, job_id)
    thread.join(timeout=180)
    assert not thread.is_alive()

    assert job_row(scratch_app, job_id) == {
        "status": JobStatus.DONE,
        "done": 8,
        "total": 8,
        "failed_items": [],
        "error": None,
    }
    assert_issued_in_order(scratch_app, ids)
    with scratch_app.app_context():
        for conclusion in db.session.execute(select(Conclusion)).scalars():
            review = conclusion.review
            assert review.state == ReviewState.ADMITTED
            assert review.decision == Decision.ADMITTED
            assert review.decided_by_id == coordinator_id
            assert conclusion.status == ConclusionStatus.VALID
            pdf = stored_pdf(conclusion)
            assert hashlib.sha256(pdf).hexdigest() == conclusion.sha256
            # The PDF rendered in another process is the document of this number and program.
            text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
            assert conclusion.number in text
            assert review.program.title in text.replace("\n", " ")
        actions = dict(
            db.session.execute(
                select(AuditEvent.action, func.count())
                .where(AuditEvent.action.in_(["conclusion.issue", "review.decide", "job.create"]))
                .group_by(AuditEvent.action)
            ).all()
        )
        assert actions == {"conclusion.issue": 8, "review.decide": 8, "job.create": 1}
        db.session.remove()


def test_a_finished_job_run_again_changes_nothing(scratch_app, monkeypatch):
    monkeypatch.setitem(scratch_app.config, "CONCLUSION_WORKERS", 1)
    ids, coordinator_id = seed(scratch_app, 2)
    job_id = make_job(scratch_app, ids, coordinator_id)
    with scratch_app.app_context():
        assert run_job(job_id).status == JobStatus.DONE
        assert run_job(job_id).status == JobStatus.DONE
        db.session.remove()
    assert_issued_in_order(scratch_app, ids)


def test_confirming_many_in_the_browser_runs_the_job_in_a_thread(scratch_app, monkeypatch):
    """The route commits the job, starts it in a thread and sends the browser to its page,
    which follows the job (here through its JSON) until it is done."""
    from tests.conftest import Auth

    monkeypatch.setitem(scratch_app.config, "JOBS_RUNNER", "thread")
    monkeypatch.setitem(scratch_app.config, "CONCLUSION_WORKERS", 2)
    ids, coordinator_id = seed(scratch_app, 4)
    with scratch_app.app_context():
        email = db.session.get(User, coordinator_id).email
        db.session.remove()
    auth = Auth(scratch_app.test_client())
    assert auth.login(email).status_code == 302
    response = auth.post(
        "/decisions/confirm", {"review_ids": [str(i) for i in ids]}, token_from="/decisions"
    )
    assert response.status_code == 302
    location = response.headers["Location"]
    assert re.search(r"/jobs/\d+$", location)
    deadline = time.monotonic() + 120
    while (data := auth.client.get(f"{location}.json").get_json())["status"] != "done":
        assert data["status"] in ("queued", "running"), data
        assert time.monotonic() < deadline, data
        time.sleep(0.1)
    assert (data["done"], data["total"], data["failed"]) == (4, 4, 0)
    page = auth.client.get(location).get_data(as_text=True)
    assert 'data-status="done"' in page and 'http-equiv="refresh"' not in page
    assert_issued_in_order(scratch_app, ids)


# --- restart --------------------------------------------------------------------------------


def test_interrupted_job_finishes_the_rest_when_run_again(scratch_app, monkeypatch):
    monkeypatch.setitem(scratch_app.config, "CONCLUSION_WORKERS", 2)
    ids, coordinator_id = seed(scratch_app, 8)
    job_id = make_job(scratch_app, ids, coordinator_id)
    with scratch_app.app_context():
        # The hook stops after two batches, as if the process had died there.
        bulk.issue_conclusions_job(job_id, workers=2, stop_after_batches=2)
        db.session.remove()
    assert_issued_in_order(scratch_app, ids[:4])
    with scratch_app.app_context():
        assert all(
            db.session.get(Review, i).state == ReviewState.AWAITING_DECISION for i in ids[4:]
        )
        job = run_job(job_id)
        assert (job.status, job.done, job.total, job.failed_items) == (JobStatus.DONE, 8, 8, [])
        db.session.remove()
    assert_issued_in_order(scratch_app, ids)


def test_job_whose_process_is_killed_halfway_finishes_with_flask_run_job(
    scratch_app, scratch_database_url, tmp_path
):
    """The real thing: ``flask run-job`` killed (SIGKILL) in the middle, then run again."""
    ids, coordinator_id = seed(scratch_app, 12)
    job_id = make_job(scratch_app, ids, coordinator_id)
    env = {
        **os.environ,
        "DATABASE_URL": scratch_database_url,
        "REVIEW_PORTAL_CONFIG": "testing",
        "STORAGE_DIR": scratch_app.config["STORAGE_DIR"],
    }
    command = [sys.executable, "-m", "flask", "--app", "review_portal.wsgi", "run-job", str(job_id)]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        kill_job_midway(scratch_database_url, job_id, at_least=3, process=process, timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)
    interrupted = job_row(scratch_app, job_id)
    assert interrupted["status"] == JobStatus.RUNNING
    assert 3 <= interrupted["done"] < 12
    # Whole units only: what is committed is numbered 1..k without a gap, the rest untouched.
    assert len(issued(scratch_app)) == interrupted["done"]
    assert_issued_in_order(scratch_app, ids[: interrupted["done"]])

    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Job {job_id} (issue_conclusions): done; 12 of 12 processed; not done: 0." in (
        result.stdout
    )
    assert_issued_in_order(scratch_app, ids)


# --- failures -------------------------------------------------------------------------------


class InlineExecutor(Executor):
    """Runs each call at once in the calling thread: the batch logic of the process pool,
    with the test's monkeypatched renderer (the real processes would not see it)."""

    def submit(self, fn, /, *args, **kwargs):
        future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:  # noqa: BLE001 - handed to the future, as a pool does
            future.set_exception(error)
        return future


@pytest.mark.parametrize("workers", [1, 2])
def test_render_failure_consumes_no_number_and_the_others_are_issued(
    scratch_app, monkeypatch, workers
):
    ids, coordinator_id = seed(scratch_app, 6, failing=(2,))
    job_id = make_job(scratch_app, ids, coordinator_id)

    def render_pdf(content):
        if content["program"]["title"].startswith("СБОЙ"):
            raise render.RenderError("шрифт не найден")
        return b"%PDF-1.4\n% " + content["number"].encode() + b"\n%%EOF\n"

    monkeypatch.setattr(render, "render_pdf", render_pdf)
    monkeypatch.setattr(bulk, "_open_pool", lambda n: InlineExecutor())
    monkeypatch.setitem(scratch_app.config, "CONCLUSION_WORKERS", workers)
    with scratch_app.app_context():
        run_job(job_id)
        db.session.remove()

    row = job_row(scratch_app, job_id)
    assert (row["status"], row["done"], row["total"], row["error"]) == (JobStatus.DONE, 6, 6, None)
    [failure] = row["failed_items"]
    assert failure["review_id"] == ids[2]
    assert failure["title"] == "СБОЙ Программа пакета 2"
    assert "шрифт не найден" in failure["error"]
    # The failing review took no number: the others are 1..5 in order, the counter at 5.
    assert_issued_in_order(scratch_app, ids[:2] + ids[3:])
    with scratch_app.app_context():
        review = db.session.get(Review, ids[2])
        assert review.state == ReviewState.AWAITING_DECISION
        assert review.decision is None and review.conclusions == []
        decided = db.session.execute(
            select(func.count()).where(
                AuditEvent.action == "review.decide", AuditEvent.object_id == str(ids[2])
            )
        ).scalar_one()
        assert decided == 0
        db.session.remove()


def test_the_next_batch_is_rendered_ahead_and_used_only_for_the_same_content(
    scratch_app, monkeypatch
):
    """While a batch is stored and committed, the next one is already rendered for the
    numbers it is expected to take; its transaction uses those PDFs only for the same
    content. Here a coordinator takes a number between the second and the third batch: the
    third batch's PDFs rendered ahead carry wrong numbers and are rendered again."""
    from review_portal.conclusions.services import local_now, take_number
    from review_portal.unit_of_work import unit_of_work

    ids, coordinator_id = seed(scratch_app, 6)
    job_id = make_job(scratch_app, ids, coordinator_id)
    rendered = []

    def render_pdf(content):
        rendered.append(content["number"])
        return b"%PDF-1.4\n% " + content["number"].encode() + b"\n%%EOF\n"

    pauses = []
    real_pause = bulk._let_others_in

    def let_others_in():
        real_pause()
        pauses.append(1)
        if len(pauses) == 2:
            with unit_of_work():
                take_number(local_now().year)

    monkeypatch.setattr(render, "render_pdf", render_pdf)
    monkeypatch.setattr(bulk, "_open_pool", lambda n: InlineExecutor())
    monkeypatch.setattr(bulk, "_let_others_in", let_others_in)
    monkeypatch.setitem(scratch_app.config, "CONCLUSION_WORKERS", 2)
    with scratch_app.app_context():
        assert run_job(job_id).status == JobStatus.DONE
        db.session.remove()

    # Batches of two: the first rendered in its transaction, the second ahead (and used),
    # the third ahead as 5 and 6, then again as 6 and 7 (5 was taken meanwhile).
    assert rendered == [number(i) for i in (1, 2, 3, 4, 5, 6, 6, 7)]
    rows = issued(scratch_app)
    assert [(s, r) for s, r, _n in rows] == list(zip((1, 2, 3, 4, 6, 7), ids, strict=True))
    with scratch_app.app_context():
        for conclusion in db.session.execute(select(Conclusion)).scalars():
            assert conclusion.number.encode() in stored_pdf(conclusion)
        db.session.remove()


def test_job_that_breaks_is_marked_failed_and_resumes_when_run_again(scratch_app, monkeypatch):
    """Not one review's problem but the job's (here: the storage is unwritable): the job
    stops as failed with the error, the batch under way is rolled back; a second delivery of
    its task leaves it failed, and the operator's run finishes it."""
    from review_portal import storage

    monkeypatch.setitem(scratch_app.config, "CONCLUSION_WORKERS", 1)
    ids, coordinator_id = seed(scratch_app, 4)
    job_id = make_job(scratch_app, ids, coordinator_id)
    real_save = storage.save_bytes
    calls = []

    def save_bytes(data):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("No space left on device")
        return real_save(data)

    monkeypatch.setattr(storage, "save_bytes", save_bytes)
    with scratch_app.app_context():
        job = run_job(job_id)
        assert job.status == JobStatus.FAILED
        assert job.error == "OSError: No space left on device"
        assert job.done == 2
        db.session.remove()
    assert_issued_in_order(scratch_app, ids[:2])
    with scratch_app.app_context():
        # A copy of its task delivered later (the sweeper's, the broker's redelivery) leaves
        # the failed job alone: nothing is issued behind the coordinator's back.
        job = run_job(job_id)
        assert (job.status, job.done) == (JobStatus.FAILED, 2)
        db.session.remove()
    assert_issued_in_order(scratch_app, ids[:2])
    with scratch_app.app_context():
        # The operator's choice (``flask run-job``) runs it again.
        job = run_job(job_id, retry_failed=True)
        assert (job.status, job.done, job.error) == (JobStatus.DONE, 4, None)
        db.session.remove()
    assert_issued_in_order(scratch_app, ids)


# --- the page and the JSON ------------------------------------------------------------------


def agreed(title: str) -> Review:
    review, _ = factories.scored_review(
        factories.with_total(16), factories.with_total(15), title=title
    )
    assert review.state == ReviewState.AWAITING_DECISION
    return review


def test_confirming_many_runs_the_job_and_its_page_shows_the_result(client, auth, english):
    coordinator = factories.CoordinatorFactory()
    first, second = agreed("Первая из пакета"), agreed("Вторая из пакета")
    db.session.commit()
    auth.login(coordinator)
    response = auth.post(
        "/decisions/confirm",
        {"review_ids": [str(first.id), str(second.id)]},
        token_from="/decisions",
    )
    job = db.session.execute(select(Job).order_by(Job.id.desc())).scalars().first()
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/jobs/{job.id}")
    # Under TESTING jobs run eagerly (in the request, after its commit).
    assert first.state == second.state == ReviewState.ADMITTED
    assert job.payload == {"review_ids": [first.id, second.id], "actor_id": coordinator.id}

    response = client.get(f"/jobs/{job.id}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f"<title>Job {job.id}: Issuing conclusions — " in page
    assert "2 decisions are being confirmed and their conclusions issued." in page
    assert 'data-status="done">Done<' in page
    tag = page.split('<progress id="job-progress"', 1)[1].split(">", 1)[0]
    assert 'value="2"' in tag and 'max="2"' in tag
    assert "2 of 2 processed (100 %)" in page
    assert 'http-equiv="refresh"' not in page and "Refresh" not in response.headers
    assert 'id="job-failures"' not in page

    response = client.get(f"/jobs/{job.id}.json")
    assert response.get_json() == {
        "id": job.id,
        "kind": "issue_conclusions",
        "status": "done",
        "done": 2,
        "total": 2,
        "percent": 100,
        "failed": 0,
        "failed_items": [],
        "error": None,
        "interruptions": 0,
        "waiting_for_queue": False,
    }


def test_page_of_a_running_job_refreshes_itself_and_lists_failures(client, auth, english):
    coordinator = factories.CoordinatorFactory()
    review = agreed("Не отрисованная")
    job = Job(
        kind="issue_conclusions",
        status=JobStatus.RUNNING,
        payload={"review_ids": [review.id], "actor_id": coordinator.id},
        total=3,
        done=1,
        failed_items=[
            {"review_id": review.id, "title": "Не отрисованная", "error": "шрифт не найден"}
        ],
    )
    db.session.add(job)
    db.session.commit()
    auth.login(coordinator)

    response = client.get(f"/jobs/{job.id}")
    page = response.get_data(as_text=True)
    assert response.headers["Refresh"] == "2"
    assert '<meta http-equiv="refresh" content="2">' in page
    assert 'data-status="running">Running<' in page
    tag = page.split('<progress id="job-progress"', 1)[1].split(">", 1)[0]
    assert 'value="1"' in tag and 'max="3"' in tag
    assert "1 of 3 processed (33 %)" in page
    row = page.split(f'id="failed-{review.id}"', 1)[1].split("</tr>", 1)[0]
    assert f'href="/reviews/{review.id}/decision"' in row
    assert "Не отрисованная" in row and "шрифт не найден" in row

    data = client.get(f"/jobs/{job.id}.json").get_json()
    assert (data["status"], data["done"], data["total"], data["failed"]) == ("running", 1, 3, 1)


def test_job_pages_are_for_the_staff_only(client, auth):
    job = Job(kind="issue_conclusions", status=JobStatus.QUEUED, payload={}, total=1)
    db.session.add(job)
    db.session.commit()
    urls = (f"/jobs/{job.id}", f"/jobs/{job.id}.json")
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    others = (
        factories.ApplicantFactory(),
        factories.expert(),
        factories.MunicipalViewerFactory(),
    )
    for user in others:
        auth.login(user)
        for url in urls:
            assert client.get(url).status_code == 403, (user.email, url)
        auth.logout()
    for user in (factories.CoordinatorFactory(), factories.AdminFactory()):
        auth.login(user)
        for url in urls:
            assert client.get(url).status_code == 200
        assert client.get(f"/jobs/{job.id + 1}").status_code == 404
        auth.logout()
