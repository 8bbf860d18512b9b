"""An import of thousands of programs through real gunicorn on PostgreSQL (a benchmark, not a
test: never run by ``make test`` or pytest).

    .venv/bin/python bench/imports.py                       # 6,000 programs, thread runner
    .venv/bin/python bench/imports.py --runner celery       # on a Celery worker over Redis
    # options: --programs N (6000), --organizations N (300), --workers N (2: gunicorn's sync
    #          workers), --poll S (1.0: seconds between two reads of the import's page),
    #          --server postgresql://postgres@127.0.0.1:5432, --database NAME (import_bench),
    #          --redis redis://127.0.0.1:6379/13 (the login throttle's counters; the broker
    #          with --runner celery)

What it does:

1. The database ``--database`` is dropped, created and migrated (``flask_migrate.upgrade``);
   two municipalities, ``--organizations`` approved organizations and a coordinator are
   written; a CSV file of ``--programs`` valid programs of those organizations is made
   (UTF-8 with BOM, ``;``, as Excel saves it; ~1.3 KB a row).
2. gunicorn serves the portal (``REVIEW_PORTAL_CONFIG=production``, sync workers, gunicorn's
   default ``--timeout`` of 30 s, not set on the command line) with ``JOBS_RUNNER=thread``
   (the job runs in a thread of the gunicorn worker that took the upload) or
   ``JOBS_RUNNER=celery`` (a Celery worker process, ``--pool solo``, on a queue of its own).
3. A client logs in as the coordinator (it plays the TLS proxy: ``X-Forwarded-Proto:
   https``, the ``Secure`` cookies returned over loopback), uploads the file to
   ``POST /import`` and then reads the import's page every ``--poll`` seconds until the job
   has ended, noting the phase and the rows checked each time.

Reported: every request's time (the upload; the longest, median and count of the page
reads), the job's own times from its row (queued → started → finished) and when the page
first showed each phase, the programs in the database afterwards (must be ``--programs``),
gunicorn's ``WORKER TIMEOUT`` lines and tracebacks in the logs, and ``/proc/loadavg`` at the
start and at the end. The exit status is 1 when a request failed or took 30 s or more, the
job did not end done, or a program is missing.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from http.cookies import SimpleCookie
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from bench.load import engine_url, recreate_database  # noqa: E402
from review_portal.imports.services import PROGRAM_COLUMNS  # noqa: E402
from tests.processes import free_port, spawn, stop, wait_until  # noqa: E402

HOST = "127.0.0.1"
PASSWORD = "Bench-import-2026"
#: gunicorn's default worker timeout: a request must end well before it.
GUNICORN_TIMEOUT = 30.0
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
_PROGRESS = re.compile(r'<span id="import-progress">(.*?)</span>', re.S)
_PHASE = re.compile(r'id="import-job"[^>]*data-status="(\w+)" data-phase="(\w*)"')

#: The columns of the portal's programs file, in its own order.
PROGRAM_HEADER = [column.name for column in PROGRAM_COLUMNS]
DIRECTIONS = [
    "техническая",
    "естественнонаучная",
    "физкультурно-спортивная",
    "художественная",
    "туристско-краеведческая",
    "социально-гуманитарная",
]
MUNICIPALITIES = ["Город Смоленск", "Вяземский район"]


def seed(url: str, storage: str, organizations: int) -> tuple[str, list[str]]:
    """Migrate and seed through the tests' factories; the coordinator's e-mail and the
    organizations' ИНН."""
    import logging

    from flask_migrate import upgrade

    from review_portal import create_app
    from review_portal.accounts.services import hash_password
    from review_portal.extensions import db
    from review_portal.unit_of_work import unit_of_work
    from tests import factories

    logging.getLogger("alembic").setLevel(logging.WARNING)
    app = create_app("development", SQLALCHEMY_DATABASE_URI=engine_url(url), STORAGE_DIR=storage)
    with app.app_context():
        upgrade()
        with unit_of_work():
            places = [factories.MunicipalityFactory(name=name) for name in MUNICIPALITIES]
            inns = [
                factories.OrganizationFactory(municipality=places[n % 2]).inn
                for n in range(organizations)
            ]
            coordinator = factories.CoordinatorFactory(
                email="coordinator@bench.example.org", password_hash=hash_password(PASSWORD)
            )
            email = coordinator.email
        db.session.remove()
        db.engine.dispose()
    return email, inns


def programs_csv(inns: list[str], count: int) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(PROGRAM_HEADER)
    annotation = "Занятия в группах: теория, практика и проектная работа. " * 18
    for n in range(count):
        age = 5 + n % 10
        writer.writerow(
            [
                f"Программа «Мастерская {n // len(inns) + 1}» № {n}",
                inns[n % len(inns)],
                DIRECTIONS[n % len(DIRECTIONS)],
                ["стартовый", "базовый", "продвинутый"][n % 3],
                "общеразвивающая",
                str(age),
                str(age + 3),
                str(36 * (1 + n % 4)),
                "9",
                "очная",
                "нет",
                "нет",
                "8",
                "15",
                MUNICIPALITIES[n % 2],
                "да" if n % 8 == 0 else "нет",
                annotation,
                "",
            ]
        )
    return buffer.getvalue().encode("utf-8-sig")


class Browser:
    """A coordinator's browser behind the TLS proxy; every request's time is kept."""

    def __init__(self, base: str) -> None:
        self.client = httpx.Client(
            base_url=base,
            timeout=2 * GUNICORN_TIMEOUT,
            follow_redirects=False,
            headers={"X-Forwarded-Proto": "https"},
        )
        self.origin = base.replace("http://", "https://")
        self.cookies: dict[str, str] = {}
        #: (label, seconds, status) of every request.
        self.requests: list[tuple[str, float, int]] = []

    def request(self, label: str, method: str, url: str, **kwargs) -> httpx.Response:
        headers = {"Referer": self.origin + url}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        started = time.perf_counter()
        response = self.client.request(method, url, headers=headers, **kwargs)
        self.requests.append((label, time.perf_counter() - started, response.status_code))
        for header in response.headers.get_list("set-cookie"):
            jar = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                self.cookies[name] = morsel.value
        return response

    def token(self, url: str) -> str:
        page = self.request(f"GET {url}", "GET", url)
        assert page.status_code == 200, (url, page.status_code)
        return _CSRF.search(page.text).group(1)


def job_row(url: str, job_id: int) -> dict:
    engine = sa.create_engine(engine_url(url))
    with engine.connect() as connection:
        row = connection.execute(
            sa.text(
                "SELECT status, done, total, error, created_at, started_at, finished_at"
                " FROM jobs WHERE id = :id"
            ),
            {"id": job_id},
        ).one()
        programs = connection.execute(sa.text("SELECT count(*) FROM programs")).scalar_one()
    engine.dispose()
    return {**row._asdict(), "programs": programs}


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--programs", type=int, default=6000)
    parser.add_argument("--organizations", type=int, default=300)
    parser.add_argument("--runner", choices=["thread", "celery"], default="thread")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--poll", type=float, default=1.0)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="import_bench")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    print(
        f"{os.cpu_count()} CPU cores; /proc/loadavg at start {loadavg()}; Python "
        f"{sys.version.split()[0]}; gunicorn --workers {args.workers} (sync, default timeout "
        f"{GUNICORN_TIMEOUT:.0f} s); JOBS_RUNNER={args.runner}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="import-bench-") as tmp:
        tmp_path = Path(tmp)
        storage = str(tmp_path / "storage")
        url = recreate_database(args.server, args.database)
        started = time.perf_counter()
        email, inns = seed(url, storage, args.organizations)
        content = programs_csv(inns, args.programs)
        print(
            f"seeded {len(inns)} organizations in {time.perf_counter() - started:.1f} s; the "
            f"file: {args.programs} programs, {len(content) / 1024 / 1024:.1f} MB",
            flush=True,
        )

        port = free_port(HOST)
        env = dict(os.environ)
        env.update(
            REVIEW_PORTAL_CONFIG="production",
            SECRET_KEY=secrets.token_hex(32),
            AUDIT_ANCHOR_KEY=secrets.token_hex(32),
            DATABASE_URL=url,
            STORAGE_DIR=storage,
            RATELIMIT_STORAGE_URI=args.redis,
            PUBLIC_URL=f"https://{HOST}:{port}",
            JOBS_RUNNER=args.runner,
        )
        worker = worker_log = None
        if args.runner == "celery":
            env.update(CELERY_BROKER_URL=args.redis, CELERY_QUEUE=f"bench-{uuid.uuid4().hex[:8]}")
            worker_log = tmp_path / "worker.log"
            worker = spawn(
                [sys.executable, "-m", "celery", "-A", "review_portal.wsgi:celery", "worker",
                 "--loglevel=INFO", "--pool=solo", "--without-mingle", "--without-gossip",
                 "-Q", env["CELERY_QUEUE"]],
                worker_log, env=env, cwd=ROOT,
            )  # fmt: skip
        log = tmp_path / "gunicorn.log"
        command = [
            str(Path(sys.executable).with_name("gunicorn")),
            "--workers", str(args.workers), "--worker-class", "sync",
            "--bind", f"{HOST}:{port}", "--chdir", str(ROOT), "review_portal.wsgi:app",
        ]  # fmt: skip
        server = spawn(command, log, env=env)
        base = f"http://{HOST}:{port}"

        def healthy() -> bool:
            try:
                return httpx.get(f"{base}/healthz", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            wait_until(healthy, "gunicorn answers", timeout=90, process=server, log=log)
            outcome = run(args, base, email, content, url)
        finally:
            stop(server, timeout=30)
            if worker is not None:
                stop(worker, timeout=30, whole_group=True)
        server_log = log.read_text(errors="replace")
        worker_text = worker_log.read_text(errors="replace") if worker_log else ""
        timeouts = server_log.count("WORKER TIMEOUT")
        tracebacks = (server_log + worker_text).count("Traceback (most recent call last)")
        print(f"gunicorn WORKER TIMEOUT lines: {timeouts}; tracebacks in the logs: {tracebacks}")
        if tracebacks:
            start = (server_log + worker_text).index("Traceback (most recent call last)")
            print((server_log + worker_text)[start : start + 3000])
        print(f"/proc/loadavg at the end {loadavg()}")
        return 1 if outcome or timeouts or tracebacks else 0


def run(args, base: str, email: str, content: bytes, url: str) -> int:
    """Log in, upload, read the import's page until the job has ended; report. 1 on a
    failure."""
    browser = Browser(base)
    token = browser.token("/login")
    response = browser.request(
        "POST /login", "POST", "/login",
        data={"csrf_token": token, "email": email, "password": PASSWORD},
    )  # fmt: skip
    assert response.status_code == 302, f"login: {response.status_code}"
    token = browser.token("/import")
    clock = time.perf_counter()
    response = browser.request(
        "POST /import", "POST", "/import",
        data={"csrf_token": token, "kind": "programs"},
        files={"file": ("programs.csv", content, "text/csv")},
    )  # fmt: skip
    uploaded = time.perf_counter()
    if response.status_code != 302:
        print(f"the upload answered {response.status_code}: {response.text[:500]}")
        return 1
    page_url = response.headers["Location"].replace(browser.origin, "")
    job_id = int(page_url.rsplit("/", 1)[1])
    first_seen: dict[str, float] = {}
    last_progress = ""
    while True:
        page = browser.request("GET import page", "GET", page_url)
        if page.status_code != 200:
            print(f"the import's page answered {page.status_code}")
            return 1
        status, phase = _PHASE.search(page.text).groups()
        key = phase or status
        first_seen.setdefault(key, time.perf_counter() - uploaded)
        progress = _PROGRESS.search(page.text)
        last_progress = " ".join(progress.group(1).split()) if progress else ""
        if status not in ("queued", "running"):
            break
        time.sleep(args.poll)
    ended = time.perf_counter()
    row = job_row(url, job_id)

    reads = [seconds for label, seconds, _ in browser.requests if label == "GET import page"]
    upload_seconds = next(s for label, s, _ in browser.requests if label == "POST /import")
    longest = max(browser.requests, key=lambda request: request[1])
    failed = [r for r in browser.requests if r[2] >= 500]
    print(f"\n== import of {args.programs} programs, JOBS_RUNNER={args.runner}")
    print(f"upload (POST /import, {len(content) / 1024 / 1024:.1f} MB): {upload_seconds:.3f} s")
    print(
        f"the import's page, {len(reads)} reads every {args.poll:g} s: median "
        f"{statistics.median(reads) * 1000:.0f} ms, longest {max(reads) * 1000:.0f} ms"
    )
    print(f"longest request of the run: {longest[0]} {longest[1]:.3f} s (status {longest[2]})")
    print(
        "the page first showed (seconds after the upload answered): "
        + ", ".join(f"{key} {seconds:.1f}" for key, seconds in first_seen.items())
    )
    print(f"last progress shown: {last_progress}")
    queued = (row["started_at"] - row["created_at"]).total_seconds()
    running = (row["finished_at"] - row["started_at"]).total_seconds()
    print(
        f"the job: status {row['status']}, {row['done']} of {row['total']}; queued "
        f"{queued:.1f} s, ran {running:.1f} s; upload to the page showing the end "
        f"{ended - clock:.1f} s"
    )
    print(f"programs in the database: {row['programs']}")
    problems = []
    if failed:
        problems.append(f"{len(failed)} requests failed")
    if longest[1] >= GUNICORN_TIMEOUT:
        problems.append("a request took the whole gunicorn timeout")
    if row["status"] != "done" or row["programs"] != args.programs:
        problems.append("the import did not end with every program written")
    for problem in problems:
        print(f"FAILED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
