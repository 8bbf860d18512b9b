"""Confirming many decisions and issuing their conclusions as a background job.

:func:`start_bulk_issue` (a service: flushes, never commits) creates the job for the chosen
reviews that can be confirmed together: awaiting a decision, not divergent, with a computed
decision. :func:`issue_conclusions_job` is the job's handler (a plain function of the job
id, run by :func:`review_portal.jobs.services.run_job`; it owns its transactions).

Gapless numbers with parallel rendering. Rendering a PDF is CPU-bound, so it runs in a pool
of processes, one per core; numbering is not parallel at all. The reviews go in batches (of
``workers`` reviews unless ``CONCLUSION_BATCH_SIZE`` says otherwise), each batch ONE
transaction: lock the reviews, decide each (``issue=False``), take one number per review
from the year's counter (:func:`take_number` locks the counter row until commit, so the
batch's numbers are consecutive and nobody else can take one meanwhile), build each content
and hand it to the pool at once, store and record each conclusion as its PDF comes back,
count the progress, commit. A number is therefore only ever committed together with its
stored conclusion. When any render of a batch fails, the whole batch is rolled back
— its numbers return to the counter — and its reviews are done one at a time (each its own
transaction, rendered in this process); a review that still fails is listed on the job with
its error and consumes no number.

Rendering ahead. The rendering processes would wait while this process stores a batch,
commits, pauses (SQLite) and starts the next batch; so, once a batch has taken its numbers,
the contents of the following batch are built as its transaction will build them — the
numbers after this batch's (:func:`~review_portal.conclusions.services.next_numbers`, read
without taking anything), the same date, the computed decision — and sent to the pool
behind this batch's. Nothing of it is written. The following batch's transaction locks,
decides, numbers and builds each content again as always, and uses a PDF rendered ahead
only when its content fingerprint is the same (the fingerprint covers every word of the
document, number and date included); anything else — someone took a number in between, a
review was skipped or changed, the day changed, the batch before failed — renders again.
So the processes render batch n+1 while this process stores and commits batch n, and a
transaction holds the counter row (and, on SQLite, the database) for about one batch's
rendering, not longer: the longest is logged at the end of the job.

Restart. A batch is all or nothing, and a review that is no longer awaiting a decision, or
already has a valid conclusion, is skipped (counted as done; only the others are batched). So a job interrupted anywhere (the process
killed, the machine restarted) is resumed by running it again (``flask run-job <id>``): the
committed batches are skipped, the rest are issued, with no duplicate and no gap.

Processes: the pool is created once per job, with the ``spawn`` start method (nothing of the
parent's threads, connections or locks is inherited); each process builds its own
application with the same configuration and renders in an application context (see
:mod:`review_portal.workers`; the application factory hands the pool's opener over as
``app.extensions[RENDER_POOL]``). The processes start before the first batch's transaction:
starting an application reads the database, and on SQLite a transaction holds the
database's write lock.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import Executor, Future, wait
from dataclasses import dataclass, field
from typing import NamedTuple

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from review_portal.accounts.models import User
from review_portal.conclusions import render
from review_portal.conclusions.services import (
    current_conclusion,
    issue_conclusion,
    local_now,
    next_numbers,
    prepare_conclusion,
    take_number,
)
from review_portal.enums import ConclusionStatus
from review_portal.extensions import db
from review_portal.jobs.models import Job
from review_portal.jobs.services import ISSUE_CONCLUSIONS, create_job, progress, runner_mode
from review_portal.permissions import authorize, is_staff, sits_on
from review_portal.reconciliation.permissions import can_view_reconciliations
from review_portal.reviews.models import Review
from review_portal.reviews.services import awaits_appeal_decision, decide_review
from review_portal.unit_of_work import unit_of_work
from review_portal.workflow import ReviewState

log = logging.getLogger(__name__)

#: Seconds between two transactions of a job on SQLite (see :func:`_let_others_in`).
SQLITE_PAUSE = 0.05


# --- starting -------------------------------------------------------------------------------


def can_confirm_together(review: Review) -> bool:
    """A review whose computed decision may be confirmed in a bulk run (and still needs its
    conclusion)."""
    return _state_refusal(review) is None


class Refusal(NamedTuple):
    """A review a bulk run leaves alone, and why (in the user's language)."""

    review: Review
    reason: str


def refusal_reason(actor: User, review: Review) -> str | None:
    """Why ``actor`` may not confirm ``review`` in a bulk run, in words; ``None`` when they
    may. The same rule as deciding one review (``can_decide``: staff who do not sit on it as
    an expert), plus what a bulk run needs (not divergent, a computed decision, no
    conclusion yet)."""
    return _actor_refusal(actor, review) or _state_refusal(review)


def _actor_refusal(actor: User, review: Review) -> str | None:
    if not is_staff(actor):
        return _("you may not decide it")
    if sits_on(actor, review):
        return _("you are one of its experts and cannot decide it")
    return None


def _state_refusal(review: Review) -> str | None:
    if review.state != ReviewState.AWAITING_DECISION:
        return _("it is no longer awaiting a decision (now: %(state)s)", state=review.state.label)
    if review.divergent:
        return _("the experts' scores diverged, decide it on its own page")
    if review.computed_decision is None:
        return _("it has no computed decision")
    if awaits_appeal_decision(review):
        return _("it is an appeal panel's review: decide it on the page of its appeal")
    if current_conclusion(review) is not None:
        return _("its conclusion is already issued")
    return None


def choose_for_bulk_issue(review_ids: list[int], actor: User) -> tuple[list[Review], list[Refusal]]:
    """The chosen reviews a bulk run would confirm (by id) and those it would leave out,
    with the reason, for this actor; reads only (the confirmation page shows it)."""
    authorize(can_view_reconciliations(actor))
    reviews = (
        db.session.execute(
            select(Review)
            .where(Review.id.in_({int(i) for i in review_ids}))
            .options(selectinload(Review.program), selectinload(Review.conclusions))
            .order_by(Review.id)
        )
        .scalars()
        .all()
    )
    refused = [Refusal(r, reason) for r in reviews if (reason := refusal_reason(actor, r))]
    chosen = [r for r in reviews if r.id not in {item.review.id for item in refused}]
    return chosen, refused


def start_bulk_issue(review_ids: list[int], actor: User) -> tuple[Job | None, list[Refusal]]:
    """A queued job confirming the computed decisions of the chosen reviews and issuing
    their conclusions, and the chosen reviews left out with the reason (not the actor's to
    decide, decided meanwhile, divergent, no computed decision): every review is checked
    for this actor. No job (``None``) when none qualifies. Flushes; the caller commits and
    then starts the job."""
    chosen, refused = choose_for_bulk_issue(review_ids, actor)
    if not chosen:
        return None, refused
    job = create_job(
        ISSUE_CONCLUSIONS,
        {"review_ids": [r.id for r in chosen], "actor_id": actor.id},
        actor,
        total=len(chosen),
    )
    return job, refused


# --- the handler ----------------------------------------------------------------------------


def worker_count() -> int:
    """Rendering processes of a bulk run: ``CONCLUSION_WORKERS``, else every core — but one
    (this process) when jobs run ``eager``: in the caller's transaction, which other
    processes can neither see nor wait for; and one in a daemonic process (a Celery prefork
    child), which may not start processes."""
    import multiprocessing

    if multiprocessing.current_process().daemon:
        # A Celery prefork child is a daemon, and daemons may not start processes: render
        # here (the worker's concurrency runs several jobs at once; ``--pool solo`` lets
        # one job use every core).
        return 1
    configured = current_app.config.get("CONCLUSION_WORKERS")
    if configured:
        return max(1, int(configured))
    if runner_mode(current_app) == "eager":
        return 1
    return os.cpu_count() or 1


class _Ahead(NamedTuple):
    """A PDF rendered ahead of its batch's transaction: for the content the review was
    expected to get there (its fingerprint), and its rendering."""

    content_sha256: str
    rendering: Future


def default_batch_size(workers: int) -> int:
    """Reviews per transaction of a bulk run: ``CONCLUSION_BATCH_SIZE``, else ``workers``."""
    return max(1, int(current_app.config.get("CONCLUSION_BATCH_SIZE") or workers))


@dataclass
class _Run:
    job_id: int
    actor_id: int
    pool: Executor | None
    done: int = 0
    failed: list[dict] = field(default_factory=list)
    #: The next batch's renderings started ahead, by review id (see :func:`_render_ahead`).
    ahead: dict[int, _Ahead] = field(default_factory=dict)
    #: Batches committed together, and seconds of the longest one's transaction.
    batches: int = 0
    longest: float = 0.0

    def job(self) -> Job:
        return db.session.get(Job, self.job_id)

    def actor(self) -> User:
        return db.session.get(User, self.actor_id)


class _BatchFailed(Exception):
    """Something in a batch failed that one-at-a-time issuing may get past."""


def issue_conclusions_job(
    job_id: int,
    *,
    workers: int | None = None,
    batch_size: int | None = None,
    stop_after_batches: int | None = None,
) -> None:
    """Confirm the computed decision of each review of the job and issue its conclusion.

    Payload: ``{"review_ids": [...], "actor_id": n}``. ``workers``: rendering processes
    (default :func:`worker_count`; 1 renders in this process). ``batch_size``: reviews per
    transaction (default ``CONCLUSION_BATCH_SIZE``, else ``workers``). ``stop_after_batches``
    is a hook for the tests: return after that many batches, leaving the job as a killed
    process would (run it again to finish it).
    """
    job = db.session.get(Job, job_id)
    review_ids = sorted({int(i) for i in job.payload["review_ids"]})
    actor = db.session.get(User, int(job.payload["actor_id"]))
    if actor is None:
        raise LookupError(f"job {job_id}: no user {job.payload['actor_id']}")
    actor_id = actor.id
    workers = max(1, workers or worker_count())
    size = max(1, batch_size or default_batch_size(workers))
    # What an earlier run (or someone else) has done counts as done; the rest is batched.
    pending = _pending_ids(review_ids)
    run = _Run(job_id, actor_id, None, done=len(review_ids) - len(pending))
    # This commit also ends the reading transaction before the processes start (see the
    # module's docstring): nothing may read the database again until they have.
    progress(job, run.done)
    if workers > 1 and len(pending) > 1:
        run.pool = _open_pool(workers)
    batches = [pending[start : start + size] for start in range(0, len(pending), size)]
    try:
        for index, batch in enumerate(batches):
            if stop_after_batches is not None and index >= stop_after_batches:
                return
            _issue_batch(run, batch, batches[index + 1] if index + 1 < len(batches) else [])
            _let_others_in()
    finally:
        _drop_ahead(run)
        if run.pool is not None:
            run.pool.shutdown(wait=True, cancel_futures=True)
        log.info(
            "job %s: %s batches of up to %s committed together, the longest transaction %.2f s",
            job_id,
            run.batches,
            size,
            run.longest,
        )


def _pending_ids(review_ids: list[int]) -> list[int]:
    """The reviews of ``review_ids`` that still need their conclusion, in id order."""
    reviews = db.session.execute(
        select(Review)
        .where(Review.id.in_(review_ids))
        .options(selectinload(Review.conclusions))
        .order_by(Review.id)
    ).scalars()
    return [review.id for review in reviews if can_confirm_together(review)]


def _let_others_in() -> None:
    """Pause between two units of work on SQLite.

    There every transaction holds the database's write lock from its first statement, and
    a waiting connection only retries now and then (up to every 100 ms): a job starting its
    next transaction at once would keep every web request waiting until it ends.
    PostgreSQL locks rows, not the database: no pause."""
    if db.session.get_bind().dialect.name == "sqlite":
        time.sleep(SQLITE_PAUSE)


def _lock_reviews(review_ids: list[int]) -> list[Review]:
    """The reviews, their rows locked until commit (in id order: no deadlock between two
    runs), reloaded as they are now."""
    return list(
        db.session.execute(
            select(Review)
            .where(Review.id.in_(review_ids))
            .order_by(Review.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalars()
    )


def _issue_batch(run: _Run, batch: list[int], following: list[int]) -> None:
    try:
        started = time.perf_counter()
        with unit_of_work():
            _issue_together(run, batch, following)
        run.batches += 1
        run.longest = max(run.longest, time.perf_counter() - started)
    except _BatchFailed as failure:
        # What was rendered ahead assumed this batch's numbers.
        _drop_ahead(run)
        log.warning(
            "job %s: batch %s rolled back (%s); issuing its conclusions one at a time",
            run.job_id,
            batch,
            failure,
        )
        _issue_one_by_one(run, batch)


def _issue_together(run: _Run, batch: list[int], following: list[int]) -> None:
    """The batch in one transaction, its PDFs rendered in parallel; raises
    :class:`_BatchFailed` (the caller rolls back) when anything but the database fails.

    Each content goes to the pool as soon as it is built (unless the same content was
    rendered ahead), then the ``following`` batch's contents are rendered ahead, and each
    PDF is stored as soon as it is back: this process prepares, stores and commits while
    the others render."""
    actor = run.actor()
    reviews = _confirmable(run, _lock_reviews(batch))
    started: list[tuple[Review, dict, Future | tuple[bool, bytes | str]]] = []
    try:
        now = local_now()
        for review in reviews:
            decide_review(review, actor, review.computed_decision, issue=False)
            number, _sequence = take_number(now.year)
            content = prepare_conclusion(review, number, now.date(), _supersedes(review))
            started.append((review, content, _start_render(run, review.id, content)))
        _render_ahead(run, following, now)
    except sa.exc.SQLAlchemyError:
        _cancel(started)
        raise
    except Exception as error:  # noqa: BLE001 - a review's own problem: try them one by one
        _cancel(started)
        raise _BatchFailed(f"{type(error).__name__}: {error}") from error
    errors = []
    for review, content, rendering in started:
        ok, result = _finish_render(run, content, rendering)
        if not ok:
            errors.append(result)
        elif not errors:
            issue_conclusion(review, actor, pdf=result, content=content)
    if errors:
        raise _BatchFailed("; ".join(errors))
    run.done += len(batch)
    progress(run.job(), run.done, run.failed)


def _issue_one_by_one(run: _Run, batch: list[int]) -> None:
    """Each review of a failed batch in its own transaction, rendered here; a review that
    fails is rolled back (no number taken) and listed on the job."""
    for review_id in batch:
        # One unit per review: its decision (or its failure) and the progress that counts it.
        with unit_of_work():
            reviews = _confirmable(run, _lock_reviews([review_id]))
            if reviews:
                review = reviews[0]
                try:
                    with db.session.begin_nested():
                        decide_review(review, run.actor(), review.computed_decision)
                except sa.exc.SQLAlchemyError:
                    raise
                except Exception as error:  # noqa: BLE001 - listed on the job; the others go on
                    log.warning("job %s: review %s not issued: %s", run.job_id, review_id, error)
                    run.failed.append(_failure(review_id, error))
            run.done += 1
            progress(run.job(), run.done, run.failed)
        _let_others_in()


def _confirmable(run: _Run, reviews: list[Review]) -> list[Review]:
    """The locked ``reviews`` the job may confirm now. Each is checked again for the job's
    actor (who may have become one of its experts since the job was queued): a refused one
    is listed on the job with the reason and counts as done; one decided meanwhile is
    skipped silently (see the module's docstring)."""
    actor = run.actor()
    kept = []
    for review in reviews:
        if _state_refusal(review) is not None:
            continue
        reason = _actor_refusal(actor, review)
        if reason is None:
            kept.append(review)
        elif all(item["review_id"] != review.id for item in run.failed):
            run.failed.append(
                {"review_id": review.id, "title": review.program.title, "error": reason}
            )
    return kept


def _failure(review_id: int, error: Exception) -> dict:
    review = db.session.get(Review, review_id)
    message = getattr(error, "message", None)
    return {
        "review_id": review_id,
        "title": review.program.title if review is not None else "",
        "error": str(message) if message is not None else f"{type(error).__name__}: {error}",
    }


def _supersedes(review: Review) -> str | None:
    """The number the new conclusion supersedes (as :func:`issue_conclusion` marks it)."""
    previous = [c for c in review.conclusions if c.status != ConclusionStatus.SUPERSEDED]
    return previous[-1].number if previous else None


# --- rendering ------------------------------------------------------------------------------


def _start_render(run: _Run, review_id: int, content: dict) -> Future | tuple[bool, bytes | str]:
    """The rendering of ``content``: the one started ahead for exactly this content (the
    same fingerprint), else one sent to the pool now, or its result when there is no pool."""
    from concurrent.futures.process import BrokenProcessPool

    ahead = run.ahead.pop(review_id, None)
    if ahead is not None:
        if ahead.content_sha256 == content["content_sha256"]:
            return ahead.rendering
        log.debug("job %s: review %s rendered again (not as expected)", run.job_id, review_id)
        ahead.rendering.cancel()
    if run.pool is not None:
        try:
            return run.pool.submit(_render_here, content)
        except BrokenProcessPool as error:
            _give_up_pool(run, error)
    return _render_here(content)


def _finish_render(
    run: _Run, content: dict, rendering: Future | tuple[bool, bytes | str]
) -> tuple[bool, bytes | str]:
    """``(True, pdf)`` or ``(False, error)``; a PDF lost with a broken pool is made here."""
    from concurrent.futures.process import BrokenProcessPool

    if not isinstance(rendering, Future):
        return rendering
    try:
        return rendering.result()
    except BrokenProcessPool as error:
        _give_up_pool(run, error)
        return _render_here(content)


def _render_ahead(run: _Run, review_ids: list[int], now) -> None:
    """Start rendering the next batch (``review_ids``) now, so that the rendering processes
    work while this process stores and commits the current batch and starts the next.

    Each content is what the review's conclusion will say if its transaction finds it as
    it is now and takes the numbers that follow this batch's (:func:`next_numbers`) on the
    same date. Nothing is taken or written: the review is read without a lock, and its own
    transaction builds the content again and uses the PDF rendered ahead only for the same
    fingerprint (see :func:`_start_render`); another number (someone else took one
    meanwhile, a review was skipped or failed), another day or a changed review renders
    again. Only with a pool (the processes would otherwise wait for this one)."""
    if run.pool is None or not review_ids:
        return
    from concurrent.futures.process import BrokenProcessPool

    # The actor is checked by the batch's own transaction: one refused there shifts the
    # numbers after it, and those are rendered again (rare; saves a query per review).
    reviews = [
        review
        for review in db.session.execute(
            select(Review)
            .where(Review.id.in_(review_ids))
            .options(selectinload(Review.conclusions))
            .order_by(Review.id)
        ).scalars()
        if can_confirm_together(review)
    ]
    for review, number in zip(reviews, next_numbers(now.year, len(reviews)), strict=True):
        try:
            content = prepare_conclusion(
                review, number, now.date(), _supersedes(review), decision=review.computed_decision
            )
        except sa.exc.SQLAlchemyError:
            raise
        except Exception:  # noqa: BLE001 - its own transaction builds it again and tells
            log.debug("job %s: review %s not rendered ahead", run.job_id, review.id, exc_info=True)
            continue
        try:
            rendering = run.pool.submit(_render_here, content)
        except BrokenProcessPool as error:
            _give_up_pool(run, error)
            return
        run.ahead[review.id] = _Ahead(content["content_sha256"], rendering)


def _drop_ahead(run: _Run) -> None:
    """Forget the renderings started ahead (those not running yet are cancelled)."""
    for ahead in run.ahead.values():
        ahead.rendering.cancel()
    run.ahead.clear()


def _give_up_pool(run: _Run, error: Exception) -> None:
    """A rendering process died: the rest of the job renders in this process."""
    run.ahead.clear()
    if run.pool is not None:
        log.warning("job %s: rendering processes broke (%s); rendering here", run.job_id, error)
        run.pool.shutdown(wait=False, cancel_futures=True)
        run.pool = None


def _cancel(started) -> None:
    """Wait for the renderings of a batch that is given up (their PDFs are not used)."""
    futures = [rendering for _r, _c, rendering in started if isinstance(rendering, Future)]
    for future in futures:
        future.cancel()
    wait(futures)


def _render_here(content: dict) -> tuple[bool, bytes | str]:
    try:
        return True, render.render_pdf(content)
    except render.RenderError as error:
        return False, f"{content.get('number')}: {error}"


#: The key of ``app.extensions`` under which the application factory puts the opener of a
#: pool of rendering processes: ``open(workers) -> Executor | None`` (see
#: :mod:`review_portal.workers`, where a process builds its application and runs each task in
#: an application context).
RENDER_POOL = "review_portal.render_pool"


def _open_pool(workers: int) -> Executor | None:
    """``workers`` rendering processes, started and ready; ``None`` (render here) when they
    cannot start or the application has no pool to give."""
    opener = current_app.extensions.get(RENDER_POOL)
    return opener(workers) if opener is not None else None
