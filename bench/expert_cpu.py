"""CPU per request of the expert's and the coordinator's pages, in-process (a benchmark, not
a test: never run by ``make test`` or pytest).

    .venv/bin/python bench/expert_cpu.py                      # seeds a scratch SQLite file
    .venv/bin/python bench/expert_cpu.py --database /tmp/expert-cpu.db --reuse
    .venv/bin/python bench/expert_cpu.py --profile autosave   # cProfile of one page
    # options: --requests N (200 per page), --programs N (30), --experts N (24),
    #          --extra N (6: programs in review with accepted assignments), --seed N (1),
    #          --database PATH (a SQLite file; default: a temporary one),
    #          --database-url URL (PostgreSQL: a database that exists, dropped and seeded),
    #          --reuse (keep the seeded database of an earlier run), --repeat N (3)

It seeds a database through the services, as ``bench/load.py`` does (a simulated season,
then programs in review whose assignments the experts accepted, one sheet with a draft),
then drives the Flask test client in this process and measures, per page, the process's
CPU (``time.process_time``) over ``--requests`` requests after five unmeasured ones, and
the SQL statements of one request (a ``before_cursor_execute`` listener):

- ``GET /expert`` and ``GET /sheets/<id>`` as the expert of the draft;
- ``POST /sheets/<id>/autosave`` as that expert (the whole form as JSON, each save from
  the revision the previous one returned, as ``static/js/sheet.js`` sends it);
- ``GET /coordinator`` as the coordinator;
- ``GET /verify/<number>`` anonymously;
- a bare Flask "hello world" through the same test client: the baseline of the ratios.

Also printed per page: the Python function calls of one request (cProfile's count over 20
requests), which does not depend on the machine's load, so two versions of the code can be
compared on a busy machine.

The CPU includes the test client's own work (building the environ, reading the answer),
about the same for every page; the hello world shows how much. The best of ``--repeat``
rounds is reported (the machine is shared). CSRF checks are off (the measured requests
carry no token); everything else runs as configured for development.
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import sqlalchemy as sa  # noqa: E402

PASSWORD = "Demo-2026-pass"
WARMUP = 5


def seed(url: str, storage: str, args) -> dict:
    from load import seed_database

    return seed_database(
        "seed", url, storage, args.programs, args.experts, args.extra, args.seed, reuse=False
    )


def subject_of(app) -> dict:
    """The expert of a draft sheet, its assignment, the coordinator and a registry number
    (read from a seeded database, so ``--reuse`` needs no state of its own)."""
    from sqlalchemy import select

    from review_portal.accounts.models import User
    from review_portal.assignment.models import Assignment
    from review_portal.enums import AssignmentStatus, SheetStatus
    from review_portal.extensions import db
    from review_portal.registry.models import RegistrySnapshotItem
    from review_portal.scoring.models import ScoreSheet
    from review_portal.simulation.season import COORDINATOR_EMAIL

    with app.app_context():
        row = db.session.execute(
            select(Assignment.id, User.email)
            .join(User, Assignment.expert_id == User.id)
            .join(ScoreSheet, ScoreSheet.assignment_id == Assignment.id)
            .where(
                Assignment.status == AssignmentStatus.ACCEPTED,
                ScoreSheet.status == SheetStatus.DRAFT,
            )
            .order_by(Assignment.id)
            .limit(1)
        ).one()
        number = db.session.execute(
            select(RegistrySnapshotItem.conclusion_number)
            .order_by(RegistrySnapshotItem.id)
            .limit(1)
        ).scalar_one()
    return {
        "assignment": row[0],
        "expert": row[1],
        "coordinator": COORDINATOR_EMAIL,
        "number": number,
    }


def hello_app():
    from flask import Flask

    app = Flask("hello")

    @app.get("/")
    def hello() -> str:
        return "Hello, World!"

    return app


class Counter:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self, *_args) -> None:
        self.n += 1


def login(client, email: str) -> None:
    response = client.post("/login", data={"email": email, "password": PASSWORD})
    assert response.status_code == 302, (email, response.status_code)


def pages(app, subject: dict):
    """``(name, client, request function)`` per page; each function makes one request and
    checks its answer."""
    expert = app.test_client()
    login(expert, subject["expert"])
    coordinator = app.test_client()
    login(coordinator, subject["coordinator"])
    anonymous = app.test_client()
    assignment = subject["assignment"]
    sheet_url = f"/sheets/{assignment}"

    page = expert.get(sheet_url)
    assert page.status_code == 200, page.status_code
    state = {"revision": int(_revision(page.get_data(as_text=True))), "n": 0}

    def get(client, url):
        def request():
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)

        return request

    def autosave():
        state["n"] += 1
        response = expert.post(
            f"{sheet_url}/autosave",
            json={
                "revision": state["revision"],
                "scores": {"A1": state["n"] % 3},
                "comments": {"A1": f"Черновик, правка {state['n']}"},
                "recommendations": "Уточнить планируемые результаты.",
                "confirmed": False,
            },
            headers={"Accept": "application/json"},
        )
        assert response.status_code == 200, (response.status_code, response.get_data())
        state["revision"] = response.get_json()["revision"]

    return [
        ("GET /expert", get(expert, "/expert")),
        ("GET /sheets/<id>", get(expert, sheet_url)),
        ("POST /sheets/<id>/autosave", autosave),
        ("GET /coordinator", get(coordinator, "/coordinator")),
        ("GET /verify/<number>", get(anonymous, f"/verify/{subject['number']}")),
    ]


def _revision(html: str) -> str:
    import re

    match = re.search(r'name="revision"[^>]*value="(\d+)"', html) or re.search(
        r'value="(\d+)"[^>]*name="revision"', html
    )
    assert match, "the sheet page shows no revision"
    return match.group(1)


def cpu_ms(request, count: int) -> float:
    for _ in range(WARMUP):
        request()
    started = time.process_time()
    for _ in range(count):
        request()
    return (time.process_time() - started) * 1000 / count


def python_calls(request, count: int = 20) -> int:
    """Python function calls per request (cProfile's count): a measure of the work that does
    not depend on what else runs on the machine."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(count):
        request()
    profiler.disable()
    return round(pstats.Stats(profiler).total_calls / count)


def statements(engine, request) -> int:
    counter = Counter()
    sa.event.listen(engine, "before_cursor_execute", counter)
    try:
        request()
    finally:
        sa.event.remove(engine, "before_cursor_execute", counter)
    return counter.n


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--programs", type=int, default=30)
    parser.add_argument("--experts", type=int, default=24)
    parser.add_argument("--extra", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database")
    parser.add_argument("--database-url")
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--profile", help="a page name part (e.g. autosave): cProfile it")
    args = parser.parse_args(argv)

    logging.disable(logging.INFO)
    scratch = Path(tempfile.mkdtemp(prefix="expert-cpu-"))
    storage = str(scratch / "storage")
    if args.database_url:
        url = args.database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    else:
        path = Path(args.database).resolve() if args.database else scratch / "portal.db"
        url = f"sqlite:///{path}"
        if args.database:
            storage = str(path.with_suffix(".storage"))
        if not args.reuse and path.exists():
            path.unlink()
    try:
        if not args.reuse:
            if args.database_url:
                from load import recreate_database

                server, _, name = args.database_url.rpartition("/")
                recreate_database(server, name)
            started = time.perf_counter()
            seed(url, storage, args)
            print(f"seeded in {time.perf_counter() - started:.0f} s", flush=True)

        from review_portal import create_app
        from review_portal.extensions import db

        app = create_app(
            "development",
            SQLALCHEMY_DATABASE_URI=url,
            STORAGE_DIR=storage,
            WTF_CSRF_ENABLED=False,
            LOG_LEVEL="WARNING",
            DEV_MAIL_EVERY=0,  # production has no mail ticker thread
        )
        subject = subject_of(app)
        with app.app_context():
            engine = db.engine
        measured = pages(app, subject)
        hello = hello_app().test_client()

        def hello_request():
            assert hello.get("/").status_code == 200

        if args.profile:
            name, request = next((n, r) for n, r in measured if args.profile in n)
            for _ in range(WARMUP):
                request()
            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
            for _ in range(args.requests):
                request()
            profiler.disable()
            print(f"{name}: {args.requests} requests")
            pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "cumulative")).print_stats(45)
            return 0

        counts = {name: statements(engine, request) for name, request in measured}
        calls = {name: python_calls(request) for name, request in measured}
        calls["hello world"] = python_calls(hello_request)
        best: dict[str, float] = {}
        for _round in range(args.repeat):
            for name, request in [("hello world", hello_request), *measured]:
                ms = cpu_ms(request, args.requests)
                best[name] = min(ms, best.get(name, ms))
        base = best["hello world"]
        load = (
            Path("/proc/loadavg").read_text().split()[:3] if os.path.exists("/proc/loadavg") else []
        )
        print(f"\n{args.requests} requests per page, best of {args.repeat}; load {' '.join(load)}")
        print(f"{'request':32} {'CPU ms':>8} {'ratio':>7} {'statements':>11} {'calls':>8}")
        hello = f"{'hello world (test client)':32} {base:8.2f} {'1':>7} {'':>11}"
        print(f"{hello} {calls['hello world']:8}")
        for name, _request in measured:
            print(
                f"{name:32} {best[name]:8.2f} {base / best[name]:7.3f} {counts[name]:11} "
                f"{calls[name]:8}"
            )
        with app.app_context():
            db.engine.dispose()
        return 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
