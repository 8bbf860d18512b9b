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
    core (batches of one review per process, the job's default), and, to show what the
    batch size costs, one per core with batches of four reviews per process.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import statistics
import sys
import tempfile
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
    #: Seconds of each bulk run, by (workers, batch size).
    bulk: dict[tuple[int, int], float] = field(default_factory=dict)
    bulk_n: int = 0
    pauses: dict[tuple[int, int], float] = field(default_factory=dict)
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


#: The bulk runs: (workers, reviews per transaction); the first two are the comparison asked
#: for (one process against one per core, batches of ``workers`` as the job does by default).
def bulk_runs() -> list[tuple[int, int]]:
    return [(1, 1), (CPUS, CPUS), (CPUS, 4 * CPUS)]


def measure_bulk(app, figures: Figures, coordinator_id: int, sets: list[list[int]]) -> None:
    figures.bulk_n = len(sets[0])
    with app.app_context():
        started = time.perf_counter()
        pool = bulk._open_pool(CPUS) if CPUS > 1 else None
        figures.pool_start = time.perf_counter() - started
        if pool is not None:
            pool.shutdown(wait=True)
        sqlite = db.engine.dialect.name == "sqlite"
        for (workers, size), review_ids in zip(bulk_runs(), sets, strict=True):
            app.config["CONCLUSION_WORKERS"] = workers
            app.config["CONCLUSION_BATCH_SIZE"] = size
            job, skipped = bulk.start_bulk_issue(review_ids, db.session.get(User, coordinator_id))
            assert not skipped
            job_id = job.id
            db.session.commit()
            started = time.perf_counter()
            job = run_job(job_id)
            figures.bulk[(workers, size)] = time.perf_counter() - started
            assert job.status == JobStatus.DONE, (job.status, job.error)
            assert job.done == len(review_ids) and not job.failed_items, job.failed_items
            batches = -(-len(review_ids) // size)
            figures.pauses[(workers, size)] = batches * bulk.SQLITE_PAUSE if sqlite else 0.0
        sequences = db.session.execute(select(Conclusion.sequence)).scalars().all()
        figures.gapless = sorted(sequences) == list(range(1, len(sequences) + 1))
        app.config.pop("CONCLUSION_WORKERS")
        app.config.pop("CONCLUSION_BATCH_SIZE")
        db.session.remove()


# --- running --------------------------------------------------------------------------------


def run_backend(name: str, url: str, args) -> Figures:
    figures = Figures()
    with tempfile.TemporaryDirectory(prefix="bench-conclusions-") as tmp:
        app = create_app(
            "development",
            SQLALCHEMY_DATABASE_URI=url,
            STORAGE_DIR=str(Path(tmp) / "storage"),
            PASSWORD_HASH_FAST=True,
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
    lines = [f"{'':{width}}" + "".join(f"{n:>20}" for n in names)]

    def row(label, fmt):
        lines.append(f"{label:{width}}" + "".join(f"{fmt(results[n]):>20}" for n in names))

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
    for workers, size in (one, default, big):
        label = "(c) bulk job" if (workers, size) == one else "    bulk job"
        row(
            f"{label}, {any_figures.bulk_n}, {workers} process(es), batches of {size}",
            lambda f, key=(workers, size): f"{f.bulk[key]:.1f} s",
        )
    row(
        f"    speed-up, {CPUS} processes, batches of {CPUS}",
        lambda f: f"{f.bulk[one] / f.bulk[default]:.2f}×",
    )
    row(
        f"    speed-up, {CPUS} processes, batches of {4 * CPUS}",
        lambda f: f"{f.bulk[one] / f.bulk[big]:.2f}×",
    )
    row(
        "    per conclusion, in the three runs",
        lambda f: (
            " / ".join(f"{f.bulk[k] / f.bulk_n * 1000:.0f}" for k in (one, default, big)) + " ms"
        ),
    )
    row(
        "    of which SQLite pauses, in the three runs",
        lambda f: " / ".join(f"{f.pauses[k]:.0f}" for k in (one, default, big)) + " s",
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
