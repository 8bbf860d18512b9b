"""Benchmark of issuing and serving conclusions (not a test).

    .venv/bin/python bench/conclusions.py [--database-url postgresql://user@host/db]
                                          [--single N] [--downloads N] [--bulk N]

On a scratch SQLite database (and, with ``--database-url``, on a scratch PostgreSQL database
created beside the one named, dropped at the end) it seeds a region through the real
services — programs accepted into expertise, two experts each, sheets submitted, the reviews
settled and awaiting a decision — and measures, in one run:

(a) issuing one conclusion: ``issue_conclusion`` and the commit (the decision itself, made
    just before in the same transaction, is not timed), median of N, against rendering the same HTML with bare WeasyPrint
    (``render.render_html_bare(render.conclusion_html(content))``); target ≤ 1.15×;
(b) downloading a stored conclusion: ``GET /verify/<number>.pdf`` through the Flask test
    client, logged in as a coordinator, median of many (when that route is missing:
    ``stored_pdf()`` plus building the response, and the table says so), against rendering
    it (``render.render_pdf(content)``); target ≥ 50× faster;
(c) the bulk job (``run_job`` of an ``issue_conclusions`` job) over equal sets of reviews:
    one rendering process (in this process, one review per transaction) against one per
    core, both with the job's default batch size (``CONCLUSION_BATCH_SIZE`` unset: batches
    of ``workers``), target ≥ 1.8×; and, to show what the batch size costs, one per core
    with batches of four reviews per process. For each run it also prints the CPU time of
    the job's process and of the rendering processes per conclusion, the share of the job
    during which every rendering process had work (a figure of the job's design that the
    machine's load hardly changes), the longest and the median batch transaction (first
    statement to commit: how long the counter row, and on SQLite the database, is held)
    and the load average before and after.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import resource
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402
from flask import Response  # noqa: E402
from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import select  # noqa: E402

from review_portal import create_app  # noqa: E402
from review_portal.accounts.models import User  # noqa: E402
from review_portal.conclusions import bulk, render  # noqa: E402
from review_portal.conclusions.models import Conclusion  # noqa: E402
from review_portal.conclusions.services import (  # noqa: E402
    current_conclusion,
    issue_conclusion,
    prepare_conclusion,
    stored_pdf,
)
from review_portal.extensions import db  # noqa: E402
from review_portal.jobs.models import JobStatus  # noqa: E402
from review_portal.jobs.services import run_job  # noqa: E402
from review_portal.reviews.models import Review  # noqa: E402
from review_portal.reviews.services import decide_review  # noqa: E402
from review_portal.workflow import ReviewState  # noqa: E402

#: The experts' totals (of 20) of the seeded reviews, in turn: admitted, revision, rejected.
TOTALS = ((16, 15), (17, 17), (12, 11), (15, 14), (8, 7))
CPUS = os.cpu_count() or 1


@dataclass
class Figures:
    single_n: int = 0
    issue: list[float] = field(default_factory=list)
    bare: list[float] = field(default_factory=list)
    render: list[float] = field(default_factory=list)
    same_content: bool = True
    download: list[float] = field(default_factory=list)
    download_how: str = ""
    pool_start: float = 0.0
    #: CPU seconds the rendering processes take to start (and stop).
    pool_start_cpu: float = 0.0
    #: Seconds of each bulk run, by (workers, batch size).
    bulk: dict[tuple[int, int], float] = field(default_factory=dict)
    bulk_n: int = 0
    pauses: dict[tuple[int, int], float] = field(default_factory=dict)
    #: Seconds of each batch transaction (first statement to commit), by run.
    transactions: dict[tuple[int, int], list[float]] = field(default_factory=dict)
    #: CPU seconds of the job's process and of its rendering processes, by run.
    cpu_parent: dict[tuple[int, int], float] = field(default_factory=dict)
    cpu_children: dict[tuple[int, int], float] = field(default_factory=dict)
    #: Share of the job during which every rendering process had work, by run.
    occupancy: dict[tuple[int, int], float] = field(default_factory=dict)
    #: Reviews per transaction of each run (the job's default where the run sets none).
    sizes: dict[tuple[int, int], int] = field(default_factory=dict)
    #: The load average (1 min) before and after each run.
    load: dict[tuple[int, int], tuple[float, float]] = field(default_factory=dict)
    gapless: bool = False


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --- databases ------------------------------------------------------------------------------


def scratch_postgres(url: str) -> str:
    """A new empty database beside the one ``url`` names (dropped by :func:`drop_postgres`)."""
    base = sa.engine.make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"{base.database}_bench_conclusions"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def drop_postgres(url: str) -> None:
    scratch = sa.engine.make_url(url)
    admin = sa.create_engine(scratch.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{scratch.database}" WITH (FORCE)')
    admin.dispose()


# --- seeding --------------------------------------------------------------------------------


def seed(app, count: int) -> tuple[int, list[int]]:
    """A coordinator and ``count`` reviews awaiting a decision (not divergent), made through
    the real services by the tests' factories; committed every 50 reviews."""
    from tests import factories

    with app.app_context():
        coordinator = factories.CoordinatorFactory(email="bench-coordinator@example.org")
        ids: list[int] = []
        i = 0
        while len(ids) < count:
            first, second = TOTALS[i % len(TOTALS)]
            review, _ = factories.scored_review(
                factories.with_total(first),
                factories.with_total(second),
                title=f"Программа дополнительного образования № {i + 1}",
            )
            i += 1
            if review.state == ReviewState.AWAITING_DECISION and not review.divergent:
                ids.append(review.id)
            if i % 50 == 0:
                db.session.commit()
        db.session.commit()
        coordinator_id = coordinator.id
        db.session.remove()
    return coordinator_id, ids


# --- (a) one conclusion ---------------------------------------------------------------------


def measure_single(app, figures: Figures, coordinator_id: int, review_ids: list[int]) -> str:
    """Decide each review, issue its conclusion (timed with the commit), then render the same content's
    HTML bare and through ``render_pdf`` (timed). The first review warms the fonts up.
    Returns the number of one conclusion, for the downloads."""
    with app.app_context():
        for index, review_id in enumerate(review_ids):
            review = db.session.get(Review, review_id)
            actor = db.session.get(User, coordinator_id)
            # The decision itself (state, audit, the provider's notice) is not the issuing:
            # it is made first, and the issuing is timed in the same transaction, with the
            # commit — number, content, render, hash, stored file, row, audit record.
            decide_review(review, actor, review.computed_decision, issue=False)
            db.session.flush()
            started = time.perf_counter()
            issue_conclusion(review, actor)
            db.session.commit()
            issue = time.perf_counter() - started
            review = db.session.get(Review, review_id)
            conclusion = current_conclusion(review)
            issued_on = conclusion.issued_at.astimezone(_zone()).date()
            content = prepare_conclusion(review, conclusion.number, issued_on, None)
            # The content as issued (its fingerprint is the one stored on the conclusion).
            figures.same_content &= content["content_sha256"] == conclusion.content_sha256
            db.session.commit()
            html = render.conclusion_html(content)
            started = time.perf_counter()
            render.render_html_bare(html)
            bare = time.perf_counter() - started
            started = time.perf_counter()
            render.render_pdf(content)
            full = time.perf_counter() - started
            if index:
                figures.issue.append(issue)
                figures.bare.append(bare)
                figures.render.append(full)
        figures.single_n = len(figures.issue)
        number = db.session.execute(
            select(Conclusion.number).order_by(Conclusion.id.desc()).limit(1)
        ).scalar_one()
        db.session.remove()
    return number


def _zone():
    from zoneinfo import ZoneInfo

    from review_portal.settings.services import get_setting

    return ZoneInfo(get_setting("timezone"))


# --- (b) downloads --------------------------------------------------------------------------


CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def measure_downloads(app, figures: Figures, number: str, count: int) -> None:
    from tests.factories import PASSWORD

    client = app.test_client()
    token = CSRF_RE.search(client.get("/login").get_data(as_text=True)).group(1)
    login = client.post(
        "/login",
        data={"email": "bench-coordinator@example.org", "password": PASSWORD, "csrf_token": token},
    )
    assert login.status_code == 302, login.status_code
    with app.app_context():
        conclusion = db.session.execute(
            select(Conclusion).where(Conclusion.number == number)
        ).scalar_one()
        stored = stored_pdf(conclusion)
        db.session.remove()
    url = f"/verify/{number}.pdf"
    probe = client.get(url)
    if probe.status_code == 200 and probe.get_data() == stored:
        figures.download_how = f"GET {url} (test client, coordinator)"
        for _ in range(count):
            started = time.perf_counter()
            response = client.get(url)
            response.get_data()
            figures.download.append(time.perf_counter() - started)
            assert response.status_code == 200
        return
    figures.download_how = (
        f"stored_pdf() + Response (GET {url} answered HTTP {probe.status_code}: "
        "the route is not there yet)"
    )
    with app.test_request_context(url):
        for _ in range(count):
            started = time.perf_counter()
            conclusion = db.session.execute(
                select(Conclusion).where(Conclusion.number == number)
            ).scalar_one()
            response = Response(
                stored_pdf(conclusion),
                mimetype="application/pdf",
                headers={"Content-Disposition": f'attachment; filename="{number}.pdf"'},
            )
            response.get_data()
            figures.download.append(time.perf_counter() - started)
        db.session.remove()


# --- (c) bulk -------------------------------------------------------------------------------


#: The bulk runs: (workers, reviews per transaction, or ``None``: the job's default); the
#: first two are the comparison asked for (one process against one per core, both with the
#: job's default batch size), the third shows what larger batches would give.
def bulk_runs() -> list[tuple[int, int | None]]:
    return [(1, None), (CPUS, None), (CPUS, 4 * CPUS)]


class Occupancy:
    """How long the rendering processes had work (a PDF sent and not back yet) for each of
    them: wraps the pool the job opens and follows each submission until its result. A
    figure of the job's design, not of the machine: on a loaded machine the processes get
    less CPU, but whether they had work waiting depends on the job alone."""

    def __init__(self, workers: int):
        self.workers = workers
        self.events: list[tuple[float, int]] = []
        self.lock = threading.Lock()

    def _event(self, step: int) -> None:
        with self.lock:
            self.events.append((time.perf_counter(), step))

    def open(self, real):
        def open_pool(workers):
            pool = real(workers)
            if pool is None:
                return None
            submit = pool.submit

            def counted(fn, /, *args, **kwargs):
                future = submit(fn, *args, **kwargs)
                self._event(+1)
                future.add_done_callback(lambda _future: self._event(-1))
                return future

            pool.submit = counted
            return pool

        return open_pool

    def share(self) -> float:
        """The share of the time from the first submission to the last result during which
        every process had work."""
        events = sorted(self.events)
        if not events:
            return float("nan")
        full = 0.0
        outstanding = 0
        last = events[0][0]
        for when, step in events:
            if outstanding >= self.workers:
                full += when - last
            outstanding += step
            last = when
        return full / (events[-1][0] - events[0][0])


def timed_transactions(spans: list[float]):
    """Record the seconds of each batch transaction of the bulk job in ``spans``: its
    ``_issue_together`` runs from the transaction's first statement to its commit (made by
    ``progress`` at its end) and the after-commit audit linking."""
    real = bulk._issue_together

    def issue_together(*args, **kwargs):
        started = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            spans.append(time.perf_counter() - started)

    return real, issue_together


def measure_bulk(app, figures: Figures, coordinator_id: int, sets: list[list[int]]) -> None:
    figures.bulk_n = len(sets[0])
    with app.app_context():
        children_before = _children_cpu()
        started = time.perf_counter()
        pool = bulk._open_pool(CPUS) if CPUS > 1 else None
        figures.pool_start = time.perf_counter() - started
        if pool is not None:
            pool.shutdown(wait=True)
        figures.pool_start_cpu = _children_cpu() - children_before
        sqlite = db.engine.dialect.name == "sqlite"
        for (workers, size), review_ids in zip(bulk_runs(), sets, strict=True):
            key = (workers, size)
            app.config["CONCLUSION_WORKERS"] = workers
            app.config.pop("CONCLUSION_BATCH_SIZE", None)
            if size is not None:
                app.config["CONCLUSION_BATCH_SIZE"] = size
            job, skipped = bulk.start_bulk_issue(review_ids, db.session.get(User, coordinator_id))
            assert not skipped
            job_id = job.id
            db.session.commit()
            spans: list[float] = []
            real, timed = timed_transactions(spans)
            bulk._issue_together = timed
            occupancy = Occupancy(workers)
            real_open = bulk._open_pool
            bulk._open_pool = occupancy.open(real_open)
            load_before = os.getloadavg()[0]
            children_before = _children_cpu()
            cpu_before = time.process_time()
            started = time.perf_counter()
            try:
                job = run_job(job_id)
            finally:
                bulk._issue_together = real
                bulk._open_pool = real_open
            figures.occupancy[key] = occupancy.share()
            figures.bulk[key] = time.perf_counter() - started
            figures.cpu_parent[key] = time.process_time() - cpu_before
            # The rendering processes are reaped when the job shuts its pool down.
            # Less what starting them costs (measured above), for the rendering alone.
            figures.cpu_children[key] = _children_cpu() - children_before
            if workers > 1:
                figures.cpu_children[key] -= figures.pool_start_cpu
            figures.load[key] = (load_before, os.getloadavg()[0])
            figures.sizes[key] = size or bulk.default_batch_size(workers)
            figures.transactions[key] = spans
            assert job.status == JobStatus.DONE, (job.status, job.error)
            assert job.done == len(review_ids) and not job.failed_items, job.failed_items
            batches = -(-len(review_ids) // (size or bulk.default_batch_size(workers)))
            figures.pauses[key] = batches * bulk.SQLITE_PAUSE if sqlite else 0.0
        sequences = db.session.execute(select(Conclusion.sequence)).scalars().all()
        figures.gapless = sorted(sequences) == list(range(1, len(sequences) + 1))
        app.config.pop("CONCLUSION_WORKERS")
        app.config.pop("CONCLUSION_BATCH_SIZE", None)
        db.session.remove()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --- running --------------------------------------------------------------------------------


def run_backend(name: str, url: str, args) -> Figures:
    figures = Figures()
    with tempfile.TemporaryDirectory(prefix="bench-conclusions-") as tmp:
        app = create_app(
            "development",
            SQLALCHEMY_DATABASE_URI=url,
            STORAGE_DIR=str(Path(tmp) / "storage"),
            PASSWORD_HASH_FAST=True,
            # No development mail ticker: started by the first request (the downloads), its
            # thread would deliver the decisions' mail during the bulk runs (competing for
            # the database) and write into the scratch directory while it is removed.
            DEV_MAIL_EVERY=0,
        )
        with app.app_context():
            upgrade()
        logging.getLogger("alembic").setLevel(logging.WARNING)
        runs = len(bulk_runs())
        count = args.single + 1 + runs * args.bulk
        started = time.perf_counter()
        coordinator_id, ids = seed(app, count)
        print(
            f"[{name}] seeded {count} reviews in {time.perf_counter() - started:.0f} s", flush=True
        )
        single, rest = ids[: args.single + 1], ids[args.single + 1 :]
        sets = [rest[i * args.bulk : (i + 1) * args.bulk] for i in range(runs)]
        number = measure_single(app, figures, coordinator_id, single)
        print(f"[{name}] (a) done", flush=True)
        measure_downloads(app, figures, number, args.downloads)
        print(f"[{name}] (b) done", flush=True)
        measure_bulk(app, figures, coordinator_id, sets)
        print(f"[{name}] (c) done", flush=True)
        with app.app_context():
            db.engine.dispose()
    return figures


def table(results: dict[str, Figures]) -> str:
    names = list(results)
    width = 56
    lines = [f"{'':{width}}" + "".join(f"{n:>24}" for n in names)]

    def row(label, fmt):
        lines.append(f"{label:{width}}" + "".join(f"{fmt(results[n]):>24}" for n in names))

    any_figures = next(iter(results.values()))
    row(
        f"(a) issue one conclusion, median of {any_figures.single_n}",
        lambda f: f"{median(f.issue) * 1000:.0f} ms",
    )
    row("    bare WeasyPrint, same HTML, median", lambda f: f"{median(f.bare) * 1000:.0f} ms")
    row(
        "    ratio (target ≤ 1.15×)",
        lambda f: f"{median(f.issue) / median(f.bare):.2f}×",
    )
    row("    same content re-rendered", lambda f: "yes" if f.same_content else "NO")
    row(
        f"(b) download, median of {len(any_figures.download)}",
        lambda f: f"{median(f.download) * 1000:.2f} ms",
    )
    row("    render_pdf(content), median", lambda f: f"{median(f.render) * 1000:.0f} ms")
    row(
        "    download is faster by (target ≥ 50×)",
        lambda f: f"{median(f.render) / median(f.download):.0f}×",
    )
    one, default, big = bulk_runs()
    runs = (one, default, big)

    def per_run(keys, figure, digits: int, unit: str):
        """A row's figures: ``figure(f, key)`` for each run of ``keys``, " / " between."""
        return lambda f: " / ".join(f"{figure(f, k):.{digits}f}" for k in keys) + unit

    def described(f, key) -> str:
        workers, size = key
        return f"{workers} process(es), batches of {f.sizes[key]}" + (
            " (default)" if size is None else ""
        )

    for key in runs:
        label = "(c) bulk job" if key == one else "    bulk job"
        row(
            f"{label}, {any_figures.bulk_n}, {described(any_figures, key)}",
            lambda f, key=key: f"{f.bulk[key]:.1f} s",
        )
    row(
        f"    SPEED-UP, default batches of {any_figures.sizes[default]} (target ≥ 1.8×)",
        lambda f: f"{f.bulk[one] / f.bulk[default]:.2f}×",
    )
    row(
        f"    speed-up, batches of {any_figures.sizes[big]}",
        lambda f: f"{f.bulk[one] / f.bulk[big]:.2f}×",
    )
    row(
        "    per conclusion, in the three runs",
        per_run(runs, lambda f, k: f.bulk[k] / f.bulk_n * 1000, 0, " ms"),
    )
    row(
        "    job process CPU per conclusion, three runs",
        per_run(runs, lambda f, k: f.cpu_parent[k] / f.bulk_n * 1000, 0, " ms"),
    )
    row(
        "    rendering processes CPU per conclusion, 2nd/3rd",
        per_run(runs[1:], lambda f, k: f.cpu_children[k] / f.bulk_n * 1000, 0, " ms"),
    )
    row(
        "    rendering processes busy (CPU / wall), 2nd/3rd",
        per_run(
            runs[1:],
            lambda f, k: f.cpu_children[k] / (k[0] * (f.bulk[k] - f.pool_start)) * 100,
            0,
            " %",
        ),
    )
    row(
        "    processes all had work (share of the job), 2nd/3rd",
        per_run(runs[1:], lambda f, k: f.occupancy[k] * 100, 0, " %"),
    )
    row(
        "    batch transaction, longest, three runs",
        per_run(runs, lambda f, k: max(f.transactions[k]) * 1000, 0, " ms"),
    )
    row(
        "    batch transaction, median, three runs",
        per_run(runs, lambda f, k: median(f.transactions[k]) * 1000, 0, " ms"),
    )
    row(
        "    of which SQLite pauses, in the three runs",
        per_run(runs, lambda f, k: f.pauses[k], 0, " s"),
    )
    row(
        "    load average (1 min), the higher of before/after",
        per_run(runs, lambda f, k: max(f.load[k]), 1, ""),
    )
    row(f"    starting {CPUS} rendering processes", lambda f: f"{f.pool_start:.1f} s")
    row("    numbers 1..n without a gap", lambda f: "yes" if f.gapless else "NO")
    how = {f.download_how for f in results.values()}
    lines.append("")
    lines.extend(f"(b) measured: {h}" for h in sorted(how))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="PostgreSQL server (a scratch database is made)")
    parser.add_argument("--single", type=int, default=15, help="conclusions issued one by one")
    parser.add_argument("--downloads", type=int, default=300, help="downloads timed")
    parser.add_argument("--bulk", type=int, default=200, help="conclusions of each bulk run")
    args = parser.parse_args(argv)
    print(f"{CPUS} CPU cores; Python {sys.version.split()[0]}", flush=True)
    results: dict[str, Figures] = {}
    with tempfile.TemporaryDirectory(prefix="bench-conclusions-db-") as tmp:
        results["SQLite"] = run_backend("SQLite", f"sqlite:///{Path(tmp) / 'bench.sqlite'}", args)
    if args.database_url:
        url = scratch_postgres(args.database_url)
        try:
            results["PostgreSQL"] = run_backend("PostgreSQL", url, args)
        finally:
            drop_postgres(url)
    print()
    print(table(results))


if __name__ == "__main__":
    main()
