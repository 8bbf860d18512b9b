"""Load test of the portal under gunicorn on PostgreSQL (a benchmark, not a test: never run
by ``make test`` or pytest).

    .venv/bin/python bench/load.py
    # options: --duration S (60: the mixed run), --probe-seconds S (8: each endpoint alone),
    #          --experts-online N (50), --visitors N (10), --workers N (4),
    #          --worker-class sync|gthread (sync), --threads N (gthread only),
    #          --config production|development (production), --programs N (100),
    #          --experts N (200), --scale N (10: the small database is 1/N of the large),
    #          --seed N (1), --server postgresql://postgres@127.0.0.1:5432,
    #          --database NAME (loadtest), --small-database NAME (loadtest_small),
    #          --redis redis://127.0.0.1:6379/7,
    #          --reuse (keep the databases of an earlier run: no season, new programs only)

What it does, in order:

1. Two PostgreSQL databases of its own are dropped, created, migrated
   (``flask_migrate.upgrade``) and seeded at the same time in two child processes, only
   through the portal's services: a simulated season (``run_season``, as ``flask simulate``:
   a region, its coordinator, providers, experts, programs scored, decided, conclusions
   issued and the registry published), then as many more programs as experts will be
   online — created with a PDF document, submitted, accepted into expertise, assigned by
   the automatic assignment (two experts each, the load spread evenly) and accepted by
   their experts; the first ``--experts-online`` experts with an accepted assignment are
   the ones online. The large database (``--database``)
   is the one loaded; the small one has 1/``--scale`` of its programs and experts (at
   least 10 programs and 20 experts, so that its season publishes a registry).
2. SQL statements per request, counted in-process with the Flask test client and a
   ``before_cursor_execute`` listener (the second of two identical requests), on both
   databases: the registry page, the API page, the verification page, an expert's home,
   the score sheet page and the coordinator's home. A page whose count is larger on the
   large database fails the run.
3. The bare Flask app of ``bench/hello_wsgi.py`` under gunicorn: ``--experts-online``
   clients request ``/`` in a closed loop for ``--probe-seconds``, once before and once
   after the portal's load; the better of the two is the baseline (the lower ratios).
4. The portal under gunicorn with the same setting, ``REVIEW_PORTAL_CONFIG=production``
   (random ``SECRET_KEY`` and ``AUDIT_ANCHOR_KEY``, ``DATABASE_URL``, login throttle
   counters in Redis). The client plays the TLS-terminating reverse proxy production runs
   behind: it sends ``X-Forwarded-Proto: https`` (the portal trusts one proxy) and returns
   the ``Secure`` cookies over loopback HTTP. Then, from this process, on 127.0.0.1 only:

   * every online expert logs in (``GET /login`` for the CSRF token, ``POST /login``);
   * every sheet's first save comes from two tabs at once (two autosaves from the same
     revision): exactly one must be stored (``200``) and the other refused as stale
     (``409`` with the stored state);
   * each endpoint alone for ``--probe-seconds`` with ``--experts-online`` clients in a
     closed loop (the anonymous pages by anonymous clients, the expert's pages and the
     autosave by the logged-in experts): its throughput as a ratio of the hello world's;
   * the mixed run for ``--duration`` seconds: every expert opens its sheets and POSTs
     autosaves in a closed loop exactly as ``static/js/sheet.js`` does (the whole form as
     JSON with the revision the page or the previous save gave, ``X-CSRFToken``), reloading
     the sheet page every tenth save (the revision shown must be the last acknowledged),
     while ``--visitors`` anonymous visitors read ``/registry`` (filters, search, sorting,
     pages), ``/registry.csv``, ``/api/v1/registry`` and ``/verify/<number>`` (HTML and
     JSON); at the end every expert submits every sheet with the plain form (``action=
     submit``), as the Submit button does.

   Reported per endpoint: requests, requests per second, p50/p95/p99 latency, errors
   (a status other than the expected one, an exception, a timeout), and the CPU used
   meanwhile, as shares of all cores: by the client (this process), by gunicorn (master
   and workers), by the PostgreSQL backends of the loaded database, and by everything else
   on the machine (the client and the other developers' work share the cores with the
   server). The server's log is searched for tracebacks.
5. The database afterwards: for every sheet the final revision, scores, comments,
   recommendations and confirmation must be those of the last save the server acknowledged
   (an autosave's ``200`` with its revision, or the submission's redirect: revision + 2,
   one for the save and one for the submission); every submitted sheet of the database
   must have a score for every criterion of its rubric. ``lost saves = N`` is printed.

The exit status is 1 when there was an error, a lost save, a submitted sheet missing a
score or a statement count that grows with the data; 0 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import os
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from html import unescape
from http.cookies import SimpleCookie
from multiprocessing import get_context
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from tests.processes import free_port, spawn, stop, wait_until  # noqa: E402

PASSWORD = "Demo-2026-pass"
HOST = "127.0.0.1"
#: Seconds a request may take before it counts as a timeout (an error).
TIMEOUT = 30.0
#: Seconds of unmeasured load after a server starts (every worker imports the app lazily).
WARMUP = 3.0
#: Every tenth autosave is followed by a reload of the sheet page.
RELOAD_EVERY = 10
#: Most requests one simulated user makes in one phase (each loop also stops at its deadline).
MAX_STEPS = 100_000
CPUS = os.cpu_count() or 1


# --- databases and seeding (child processes) --------------------------------------------


def engine_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def recreate_database(server: str, name: str) -> str:
    """Drop and create the database ``name`` on ``server``; its URL."""
    engine = sa.create_engine(engine_url(f"{server}/postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine.dispose()
    return f"{server}/{name}"


def portal_app(url: str, storage: str, **overrides):
    from review_portal import create_app

    logging.getLogger("alembic").setLevel(logging.WARNING)
    return create_app("development", SQLALCHEMY_DATABASE_URI=url, STORAGE_DIR=storage, **overrides)


def program_pdf() -> bytes:
    """One real program document (WeasyPrint), uploaded for every extra program."""
    import weasyprint

    html = (
        '<html lang="ru"><head><meta charset="utf-8"></head><body>'
        "<h1>Дополнительная общеобразовательная программа</h1>"
        "<h2>1. Пояснительная записка</h2><p>Программа для нагрузочного теста.</p>"
        "<h2>2. Учебный план</h2><p>Учебный план согласован по часам.</p></body></html>"
    )
    return weasyprint.HTML(string=html).write_pdf()


def seed_database(label: str, url: str, storage: str, programs: int, experts: int,
                  extra_programs: int, seed: int, reuse: bool) -> dict:  # fmt: skip
    """Migrate and seed one database through the services (runs in a child process):
    the season (unless ``reuse``), then ``extra_programs`` programs in review with accepted
    assignments for the experts who will be online."""
    from flask_migrate import upgrade
    from sqlalchemy import func, select
    from werkzeug.datastructures import FileStorage

    from review_portal.accounts.models import User
    from review_portal.assignment.models import Assignment
    from review_portal.assignment.services import accept_assignment, run_assignment
    from review_portal.enums import (
        AssignmentStatus,
        DocumentKind,
        ProgramType,
        RegistryKind,
        SheetStatus,
        StudyForm,
    )
    from review_portal.experts.models import ExpertProfile
    from review_portal.extensions import db
    from review_portal.programs.documents import add_document
    from review_portal.programs.models import Program
    from review_portal.programs.services import accept_submission, create_program, submit_program
    from review_portal.registry.models import RegistrySnapshotItem
    from review_portal.registry.queries import latest_snapshot
    from review_portal.reviews.models import Review
    from review_portal.scoring.models import ScoreSheet
    from review_portal.scoring.services import SheetInput, save_sheet
    from review_portal.simulation import data
    from review_portal.simulation.season import (
        COORDINATOR_EMAIL,
        _applicant,
        provider_email,
        run_season,
    )

    started = time.perf_counter()
    logging.disable(logging.INFO)  # the migrations' and the e-mail log's lines
    app = portal_app(url, storage)
    with app.app_context():
        upgrade()
        if not reuse:
            run_season(programs, experts, seed, echo=lambda line: None)
            print(f"[{label}] season seeded in {time.perf_counter() - started:.0f} s", flush=True)

        coordinator = db.session.execute(
            select(User).where(User.email == COORDINATOR_EMAIL)
        ).scalar_one()
        # The season's providers (whichever size of season made the database).
        organizations = [
            user.organization
            for user in db.session.execute(
                select(User)
                .where(User.email.like(provider_email(seed, 1).replace("001@", "%@")))
                .order_by(User.email)
            ).scalars()
        ]
        pdf = program_pdf()
        rng = random.Random(f"{seed}:load")
        directions = list(data.DIRECTION_WEIGHTS)
        review_ids = []
        for index in range(extra_programs):
            organization = organizations[index % len(organizations)]
            applicant = _applicant(organization)
            idea = rng.choice(data.PROGRAM_IDEAS[directions[index % len(directions)]])
            program = create_program(
                organization,
                applicant,
                title=f"{data.program_title(idea, rng)} (нагрузочный тест {index + 1})",
                direction=directions[index % len(directions)],
                level=idea.level,
                program_type=ProgramType.GENERAL_DEVELOPMENTAL,
                requested_registry_kind=RegistryKind.CERTIFIED,
                age_min=idea.ages[0],
                age_max=idea.ages[1],
                total_hours=idea.hours,
                duration_months=idea.months,
                study_form=StudyForm.FULL_TIME,
                uses_distance_learning=False,
                network_form=False,
                group_min=8,
                group_max=15,
                adapted_for_disabilities=False,
                annotation=idea.annotation,
            )
            upload = FileStorage(
                io.BytesIO(pdf), filename="Программа.pdf", content_type="application/pdf"
            )
            add_document(program, applicant, upload, DocumentKind.PROGRAM)
            submit_program(program, applicant)
            accept_submission(program, coordinator)
            review_ids.append(program.current_review_id)
        db.session.commit()
        run_assignment(coordinator, apply=True, seed=seed, review_ids=review_ids)
        db.session.commit()
        offered = db.session.execute(
            select(Assignment)
            .where(
                Assignment.review_id.in_(review_ids),
                Assignment.status == AssignmentStatus.OFFERED,
            )
            .order_by(Assignment.id)
        ).scalars()
        for assignment in offered:
            accept_assignment(assignment, assignment.expert)
        db.session.commit()

        accepted = db.session.execute(
            select(Assignment.id, User.email)
            .join(User, Assignment.expert_id == User.id)
            .join(Review, Assignment.review_id == Review.id)
            .where(
                Assignment.review_id.in_(review_ids),
                Assignment.status == AssignmentStatus.ACCEPTED,
            )
            .order_by(User.id, Assignment.id)
        ).all()
        by_expert: dict[str, list[int]] = defaultdict(list)
        for assignment_id, email in accepted:
            by_expert[email].append(assignment_id)
        online = [{"email": e, "assignments": ids} for e, ids in by_expert.items()]

        # The subject of the statement counts: the first expert's sheet with a draft in it.
        subject = online[0]
        assignment = db.session.get(Assignment, subject["assignments"][0])
        expert = assignment.expert
        save_sheet(
            assignment,
            expert,
            SheetInput(revision=0, scores={"A1": 2}, comments={"A1": "Черновик"}),
        )
        db.session.commit()
        snapshot = latest_snapshot(RegistryKind.CERTIFIED)
        if snapshot is None:
            raise RuntimeError(f"[{label}] the season published no registry: seed more programs")
        numbers = list(
            db.session.execute(
                select(RegistrySnapshotItem.conclusion_number)
                .where(RegistrySnapshotItem.snapshot_id == snapshot.id)
                .order_by(RegistrySnapshotItem.id)
            ).scalars()
        )
        sizes = {
            "programs": db.session.execute(select(func.count()).select_from(Program)).scalar(),
            "experts": db.session.execute(select(func.count()).select_from(ExpertProfile)).scalar(),
            "registry entries": len(numbers),
            "submitted sheets": db.session.execute(
                select(func.count())
                .select_from(ScoreSheet)
                .where(ScoreSheet.status == SheetStatus.SUBMITTED)
            ).scalar(),
        }
        db.engine.dispose()
    print(
        f"[{label}] seeded in {time.perf_counter() - started:.0f} s: "
        + ", ".join(f"{v} {k}" for k, v in sizes.items())
        + f"; {len(online)} experts with accepted assignments",
        flush=True,
    )
    return {
        "url": url,
        "sizes": sizes,
        "experts": online,
        "coordinator": COORDINATOR_EMAIL,
        "subject": {"email": subject["email"], "assignment": subject["assignments"][0]},
        "numbers": numbers,
        "seconds": time.perf_counter() - started,
    }


# --- SQL statements per request (in-process) ---------------------------------------------


def count_statements(seeded: dict, storage: str) -> dict[str, int]:
    """Statements of the second of two identical requests per page, by page name."""
    from review_portal.extensions import db

    app = portal_app(seeded["url"], storage, WTF_CSRF_ENABLED=False)
    counter = {"n": 0}
    requesting = threading.get_ident()

    def count(*_args) -> None:
        # The request's own statements only: the application's mail thread sends what the
        # seeding left in the outbox meanwhile, on its own connection.
        if threading.get_ident() == requesting:
            counter["n"] += 1

    number = seeded["numbers"][0]
    pages = {
        "anonymous": [
            ("/registry", "/registry"),
            ("/registry?direction=technical&sort=title", "/registry?direction=technical&sort=title"),
            ("/api/v1/registry", "/api/v1/registry"),
            ("/verify/<number>", f"/verify/{number}"),
        ],
        seeded["subject"]["email"]: [
            ("/expert", "/expert"),
            ("/sheets/<id>", f"/sheets/{seeded['subject']['assignment']}"),
        ],
        seeded["coordinator"]: [("/coordinator", "/coordinator")],
    }  # fmt: skip
    counts: dict[str, int] = {}
    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        for who, urls in pages.items():
            client = app.test_client()
            if who != "anonymous":
                response = client.post("/login", data={"email": who, "password": PASSWORD})
                assert response.status_code == 302, (who, response.status_code)
            for name, url in urls:
                for _attempt in range(2):
                    counter["n"] = 0
                    response = client.get(url)
                    if response.status_code != 200:
                        raise RuntimeError(f"{url}: {response.status_code}")
                counts[name] = counter["n"]
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
        engine.dispose()
    return counts


# --- servers ------------------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    log: Path
    #: The database whose PostgreSQL backends count as the server's (None: no database).
    database: str | None = None

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def stop(self) -> None:
        stop(self.process, timeout=30)

    def cpu_seconds(self) -> float:
        """User + system CPU of the gunicorn master and its workers so far."""
        pids = [self.process.pid] + children_of(self.process.pid)
        total = 0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def postgres_cpu_seconds(self) -> float:
        """User + system CPU of the PostgreSQL backends connected to the database so far
        (a backend's command line is ``postgres: [cluster:] user database host(port) state``)."""
        if self.database is None:
            return 0.0
        total = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                words = (entry / "cmdline").read_bytes().replace(b"\0", b" ").split()
                if words[:1] != [b"postgres:"] or self.database.encode() not in words[1:5]:
                    continue
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    result = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            result.append(int(entry.name))
    return result


def gunicorn_command(args, app: str, chdir: Path, port: int) -> list[str]:
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        "--workers",
        str(args.workers),
        "--worker-class",
        args.worker_class,
        "--bind",
        f"{HOST}:{port}",
        "--chdir",
        str(chdir),
        "--timeout",
        "60",
        "--log-level",
        "warning",
    ]
    if args.worker_class == "gthread":
        command += ["--threads", str(args.threads)]
    return command + [app]


def start_server(command: list[str], env: dict, log: Path, port: int, health: str) -> Server:
    server = Server(spawn(command, log, env=env), port, log)

    def healthy() -> bool:
        try:
            return httpx.get(f"{server.base}{health}", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(
            healthy, f"gunicorn answers {health}", timeout=90, process=server.process, log=log
        )
    except AssertionError:
        server.stop()
        raise
    return server


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from ``/proc/stat`` (steal counts as busy)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


# --- the client ---------------------------------------------------------------------------


class Stats:
    """Latencies and statuses per endpoint label, errors with what went wrong."""

    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, Counter] = defaultdict(Counter)
        self.errors: dict[str, int] = Counter()
        self.samples: list[str] = []
        self.seconds = 0.0
        self.cpu: dict[str, float] = {}

    def record(self, label: str, seconds: float, status: int) -> None:
        self.latencies[label].append(seconds)
        self.statuses[label][status] += 1

    def error(self, label: str, what: str) -> None:
        self.errors[label] += 1
        if len(self.samples) < 20:
            self.samples.append(f"{label}: {what}")


_CSRF = re.compile(r'<input[^>]*name="csrf_token"[^>]*>')
_VALUE = re.compile(r'value="([^"]*)"')
_REVISION = re.compile(r'<input[^>]*id="sheet-revision"[^>]*>')
_RADIO = re.compile(r'<input[^>]*type="radio"[^>]*name="score-([^"]+)"[^>]*value="(-?\d+)"([^>]*)>')
_COMMENT = re.compile(r'<textarea[^>]*name="comment-([^"]+)"[^>]*>([^<]*)</textarea>')
_RECOMMENDATIONS = re.compile(r'<textarea[^>]*name="recommendations"[^>]*>([^<]*)</textarea>')
_CONFIRMED = re.compile(r'<input[^>]*name="confirmed"[^>]*>')


def csrf_of(html: str) -> str:
    tag = _CSRF.search(html)
    if tag is None:
        raise ValueError("no csrf_token in the page")
    return _VALUE.search(tag.group(0)).group(1)


class Browser:
    """One user's HTTP client: its own cookies, the headers a browser behind the proxy
    sends (``Referer`` of the page the request comes from, ``X-Forwarded-Proto``)."""

    def __init__(self, base: str, stats: Stats, https: bool) -> None:
        self.client = httpx.AsyncClient(
            base_url=base,
            timeout=TIMEOUT,
            follow_redirects=False,
            headers={"X-Forwarded-Proto": "https"} if https else {},
        )
        #: The cookies kept here, not in httpx's jar: behind TLS a browser returns the
        #: ``Secure`` cookies, which a cookie jar refuses to send over loopback HTTP.
        self.cookies: dict[str, str] = {}
        self.origin = base.replace("http://", "https://") if https else base
        self.stats = stats

    async def request(self, label: str, method: str, url: str, *, expect=(200,),
                      referer: str | None = None, headers=None, **kwargs) -> httpx.Response | None:  # fmt: skip
        headers = dict(headers or {})
        if referer is not None:
            headers["Referer"] = self.origin + referer
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        started = time.perf_counter()
        try:
            response = await self.client.request(method, url, headers=headers, **kwargs)
        except httpx.TimeoutException:
            self.stats.error(label, f"timeout {method} {url}")
            return None
        except httpx.HTTPError as error:
            self.stats.error(label, f"{method} {url}: {error!r}")
            return None
        self.stats.record(label, time.perf_counter() - started, response.status_code)
        self.keep_cookies(response)
        if response.status_code not in expect:
            self.stats.error(label, f"{response.status_code} {method} {url}: {response.text[:300]}")
            return None
        return response

    def keep_cookies(self, response: httpx.Response) -> None:
        self.client.cookies.clear()
        for header in response.headers.get_list("set-cookie"):
            jar = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or "1970" in morsel["expires"]:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value

    async def close(self) -> None:
        await self.client.aclose()


@dataclass
class Sheet:
    """What the expert's page gave and what the server acknowledged."""

    assignment_id: int
    criteria: list[str] = field(default_factory=list)
    scale: list[int] = field(default_factory=list)
    revision: int = 0
    #: Revision the page showed first: nothing acknowledged → the sheet must still be there.
    initial_revision: int = 0
    #: The content of the last acknowledged save (None: none yet).
    acked: dict | None = None
    submitted: bool = False
    saves: int = 0


class Expert:
    def __init__(self, email: str, assignments: list[int], browser: Browser, seed: int) -> None:
        self.email = email
        self.sheets = [Sheet(a) for a in assignments]
        self.browser = browser
        self.csrf = ""
        self.rng = random.Random(f"{seed}:{email}")
        self.content: dict[int, dict] = {}

    async def login(self) -> bool:
        page = await self.browser.request("GET /login", "GET", "/login")
        if page is None:
            return False
        response = await self.browser.request(
            "POST /login",
            "POST",
            "/login",
            data={"csrf_token": csrf_of(page.text), "email": self.email, "password": PASSWORD},
            expect=(302,),
            referer="/login",
        )
        if response is None or not response.headers.get("location", "").endswith("/expert"):
            return False
        return await self.home() and all([await self.open(sheet) for sheet in self.sheets])

    async def home(self) -> bool:
        return await self.browser.request("GET /expert", "GET", "/expert") is not None

    async def open(self, sheet: Sheet, check: bool = False) -> bool:
        """Load the sheet page; with ``check`` its revision must be the acknowledged one."""
        page = await self.browser.request(
            "GET /sheets/<id>", "GET", f"/sheets/{sheet.assignment_id}"
        )
        if page is None:
            return False
        html = page.text
        self.csrf = csrf_of(html)
        revision = int(_VALUE.search(_REVISION.search(html).group(0)).group(1))
        if check and revision != sheet.revision:
            self.browser.stats.error(
                "GET /sheets/<id>",
                f"sheet {sheet.assignment_id} shows revision {revision}, "
                f"the last acknowledged is {sheet.revision}",
            )
            return False
        if not sheet.criteria:
            # The form as the page shows it: what collect() in sheet.js starts from.
            criteria: dict[str, list[int]] = {}
            scores: dict[str, int | None] = {}
            for name, value, rest in _RADIO.findall(html):
                criteria.setdefault(name, []).append(int(value))
                scores.setdefault(name, None)
                if re.search(r"\bchecked\b", rest):
                    scores[name] = int(value)
            sheet.criteria = list(criteria)
            sheet.scale = sorted(next(iter(criteria.values())))
            sheet.revision = sheet.initial_revision = revision
            self.content[sheet.assignment_id] = {
                "scores": scores,
                "comments": {n: unescape(t) for n, t in _COMMENT.findall(html)},
                "recommendations": unescape(_RECOMMENDATIONS.search(html).group(1)),
                "confirmed": "checked" in _CONFIRMED.search(html).group(0),
            }
        return True

    def edit(self, sheet: Sheet, complete: bool = False) -> dict:
        """The whole form after the expert's next change (everything filled in when
        ``complete``), as ``collect()`` in sheet.js builds it."""
        rng = self.rng
        old = self.content[sheet.assignment_id]
        scores = dict(old["scores"])
        comments = dict(old["comments"])
        sheet.saves += 1
        for criterion in rng.sample(sheet.criteria, k=min(2, len(sheet.criteria))):
            scores[criterion] = rng.choice(sheet.scale)
            comments[criterion] = f"Замечание к критерию {criterion}, правка {sheet.saves}."
        if complete:
            for criterion in sheet.criteria:
                if scores[criterion] is None:
                    scores[criterion] = rng.choice(sheet.scale)
                if not comments[criterion]:
                    comments[criterion] = f"Критерий {criterion} оценён по тексту программы."
        content = {
            "scores": scores,
            "comments": comments,
            "recommendations": f"Рекомендации эксперта (версия {sheet.saves}): уточнить "
            "планируемые результаты и оценочные материалы.",
            "confirmed": complete or rng.random() < 0.5,
        }
        self.content[sheet.assignment_id] = content
        return content

    async def two_tabs(self, sheet: Sheet) -> bool:
        """The sheet open in two tabs, each autosaving its own change from the same
        revision at the same moment: exactly one is stored (200), the other is refused as
        stale (409, with the stored state, whose revision is the one acknowledged)."""
        label = "POST /sheets/<id>/autosave (two tabs)"
        before = self.content[sheet.assignment_id]
        tabs = []
        for _tab in range(2):
            self.content[sheet.assignment_id] = before
            tabs.append(self.edit(sheet))
        answers = await asyncio.gather(
            *(
                self.browser.request(
                    label,
                    "POST",
                    f"/sheets/{sheet.assignment_id}/autosave",
                    json={"revision": sheet.revision, **content},
                    headers={"X-CSRFToken": self.csrf, "Accept": "application/json"},
                    referer=f"/sheets/{sheet.assignment_id}",
                    expect=(200, 409),
                )
                for content in tabs
            )
        )
        if any(answer is None for answer in answers):
            return False
        statuses = sorted(answer.status_code for answer in answers)
        if statuses != [200, 409]:
            self.browser.stats.error(label, f"answers {statuses}, expected one 200 and one 409")
            return False
        for answer, content in zip(answers, tabs, strict=True):
            if answer.status_code == 200:
                sheet.revision = answer.json()["revision"]
                sheet.acked = content
                self.content[sheet.assignment_id] = content
        stale = next(a for a in answers if a.status_code == 409).json()
        if stale.get("status") != "stale" or stale["current"]["revision"] != sheet.revision:
            self.browser.stats.error(label, f"refused tab got {stale}")
            return False
        return True

    async def autosave(self, sheet: Sheet) -> bool:
        content = self.edit(sheet)
        response = await self.browser.request(
            "POST /sheets/<id>/autosave",
            "POST",
            f"/sheets/{sheet.assignment_id}/autosave",
            json={"revision": sheet.revision, **content},
            headers={"X-CSRFToken": self.csrf, "Accept": "application/json"},
            referer=f"/sheets/{sheet.assignment_id}",
        )
        if response is None:
            return False
        body = response.json()
        if body.get("status") != "saved" or not isinstance(body.get("revision"), int):
            self.browser.stats.error("POST /sheets/<id>/autosave", f"answer {body}")
            return False
        sheet.revision = body["revision"]
        sheet.acked = content
        return True

    async def submit(self, sheet: Sheet) -> bool:
        """The Submit button: the plain form with every field the browser sends."""
        content = self.edit(sheet, complete=True)
        form = [("csrf_token", self.csrf), ("revision", str(sheet.revision))]
        for criterion in sheet.criteria:
            form.append((f"score-{criterion}", str(content["scores"][criterion])))
            form.append((f"comment-{criterion}", content["comments"][criterion]))
        form += [
            ("recommendations", content["recommendations"]),
            ("confirmed", "y"),
            ("action", "submit"),
        ]
        response = await self.browser.request(
            "POST /sheets/<id> (submit)",
            "POST",
            f"/sheets/{sheet.assignment_id}",
            content=urlencode(form),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            expect=(302,),
            referer=f"/sheets/{sheet.assignment_id}",
        )
        if response is None:
            return False
        if "/expert/history/" not in response.headers.get("location", ""):
            self.browser.stats.error(
                "POST /sheets/<id> (submit)", f"redirected to {response.headers.get('location')}"
            )
            return False
        # One revision for the save, one for the submission.
        sheet.revision += 2
        sheet.acked = content
        sheet.submitted = True
        return True

    async def work(self, deadline: float) -> None:
        """Autosaves over the expert's sheets in turn until ``deadline``, then submit."""
        for turn in range(MAX_STEPS):
            if time.monotonic() >= deadline:
                break
            sheet = self.sheets[turn % len(self.sheets)]
            if await self.autosave(sheet) and sheet.saves % RELOAD_EVERY == 0:
                await self.open(sheet, check=True)
        for sheet in self.sheets:
            await self.submit(sheet)


class Visitor:
    """An anonymous reader of the registry, its exports and API, and the verification."""

    def __init__(self, browser: Browser, numbers: list[str], seed: int, index: int) -> None:
        self.browser = browser
        self.numbers = numbers
        self.rng = random.Random(f"{seed}:visitor:{index}")

    def registry_url(self) -> str:
        rng = self.rng
        return rng.choice(
            [
                "/registry",
                "/registry?page=2",
                "/registry?per_page=20&page=3",
                f"/registry?direction={rng.choice(DIRECTIONS)}",
                f"/registry?level={rng.choice(LEVELS)}&age={rng.randint(6, 16)}",
                f"/registry?q={rng.choice(WORDS)}",
                "/registry?sort=title",
                "/registry?sort=percent&page=2",
                "/registry?form=full_time&ovz=0",
            ]
        )

    async def one(self, what: str) -> None:
        rng = self.rng
        if what == "registry":
            await self.browser.request("GET /registry", "GET", self.registry_url())
        elif what == "csv":
            await self.browser.request("GET /registry.csv", "GET", "/registry.csv")
        elif what == "api":
            url = rng.choice(
                [
                    f"/api/v1/registry?page={rng.randint(1, 3)}&per_page=20",
                    f"/api/v1/registry?direction={rng.choice(DIRECTIONS)}",
                    "/api/v1/registry",
                ]
            )
            await self.browser.request("GET /api/v1/registry", "GET", url)
        else:
            number = rng.choice(self.numbers)
            if rng.random() < 0.5:
                await self.browser.request(
                    "GET /verify/<number>",
                    "GET",
                    f"/verify/{number}",
                    headers={"Accept": "application/json"},
                )
            else:
                await self.browser.request("GET /verify/<number>", "GET", f"/verify/{number}")

    async def browse(self, deadline: float) -> None:
        for _step in range(MAX_STEPS):
            if time.monotonic() >= deadline:
                break
            await self.one(self.rng.choices(VISITS, VISIT_WEIGHTS)[0])


DIRECTIONS = [
    "technical",
    "natural_science",
    "physical_sports",
    "arts",
    "tourism_local_history",
    "social_humanitarian",
]
LEVELS = ["introductory", "basic", "advanced"]
WORDS = ["робототехника", "студия", "Шахматы", "юный", "ДДТ"]
VISITS = ["registry", "csv", "api", "verify"]
VISIT_WEIGHTS = [5, 1, 2, 2]


async def closed_loop(count: int, seconds: float, step) -> None:
    """``count`` concurrent loops of ``step(i)`` until ``seconds`` have passed."""
    deadline = time.monotonic() + seconds

    async def loop(index: int) -> None:
        for _step in range(MAX_STEPS):
            if time.monotonic() >= deadline:
                break
            await step(index)

    await asyncio.gather(*(loop(i) for i in range(count)))


def measured(stats: Stats, server: Server):
    """A context for one phase: wall time and the CPU of client, server and machine."""

    class Phase:
        def __enter__(self):
            self.started = time.perf_counter()
            self.client = time.process_time()
            self.server = server.cpu_seconds()
            self.postgres = server.postgres_cpu_seconds()
            self.machine = machine_ticks()
            return self

        def __exit__(self, *exc):
            stats.seconds = time.perf_counter() - self.started
            busy, total = machine_ticks()
            wall = stats.seconds * CPUS
            stats.cpu = {
                "client": (time.process_time() - self.client) / wall,
                "server": (server.cpu_seconds() - self.server) / wall,
                "postgres": (server.postgres_cpu_seconds() - self.postgres) / wall,
                "machine": (busy - self.machine[0]) / max(1, total - self.machine[1]),
            }
            stats.cpu["others"] = max(
                0.0,
                stats.cpu["machine"]
                - stats.cpu["client"]
                - stats.cpu["server"]
                - stats.cpu["postgres"],
            )

    return Phase()


async def hello_baseline(args, server: Server) -> Stats:
    stats = Stats()
    browsers = [Browser(server.base, stats, https=False) for _ in range(args.experts_online)]
    await closed_loop(len(browsers), WARMUP, lambda i: browsers[i].client.get("/"))
    with measured(stats, server):
        await closed_loop(
            len(browsers), args.probe_seconds, lambda i: browsers[i].request("GET /", "GET", "/")
        )
    for browser in browsers:
        await browser.close()
    return stats


def run_hello(args, log: Path) -> Stats:
    port = free_port(HOST)
    command = gunicorn_command(args, "hello_wsgi:app", ROOT / "bench", port)
    server = start_server(command, dict(os.environ), log, port, "/")
    try:
        return asyncio.run(hello_baseline(args, server))
    finally:
        server.stop()


async def portal_load(args, server: Server, seeded: dict) -> tuple[dict, Stats, list[Expert]]:
    """Log the experts in, probe each endpoint alone, then the mixed run and submissions."""
    https = args.config == "production"
    login_stats = Stats()
    experts = [
        Expert(e["email"], e["assignments"], Browser(server.base, login_stats, https), args.seed)
        for e in seeded["experts"][: args.experts_online]
    ]
    anonymous = [Browser(server.base, Stats(), https) for _ in range(args.experts_online)]
    visitors = [
        Visitor(browser, seeded["numbers"], args.seed, i)
        for i, browser in enumerate(anonymous[: args.visitors])
    ]
    warm = [Visitor(b, seeded["numbers"], args.seed, 1000 + i) for i, b in enumerate(anonymous)]
    await closed_loop(len(warm), WARMUP, lambda i: warm[i].one("registry"))
    with measured(login_stats, server):
        logged_in = await asyncio.gather(*(expert.login() for expert in experts))
    if not all(logged_in):
        raise RuntimeError(f"login failed: {login_stats.samples}")
    tabs = Stats()
    for expert in experts:
        expert.browser.stats = tabs
    with measured(tabs, server):
        await asyncio.gather(*(e.two_tabs(sheet) for e in experts for sheet in e.sheets))

    probes: dict[str, Stats] = {}

    def rebind(stats: Stats) -> None:
        for browser in anonymous + [e.browser for e in experts]:
            browser.stats = stats

    anonymous_probes = {
        "GET /registry": "registry",
        "GET /registry.csv": "csv",
        "GET /api/v1/registry": "api",
        "GET /verify/<number>": "verify",
    }
    probers = [Visitor(b, seeded["numbers"], args.seed, 2000 + i) for i, b in enumerate(anonymous)]
    for label, what in anonymous_probes.items():
        probes[label] = stats = Stats()
        rebind(stats)
        with measured(stats, server):
            await closed_loop(len(probers), args.probe_seconds, lambda i, w=what: probers[i].one(w))
    expert_probes = {
        "GET /expert": lambda e: e.home(),
        "GET /sheets/<id>": lambda e: e.open(e.sheets[0], check=True),
        "POST /sheets/<id>/autosave": lambda e: e.autosave(e.sheets[0]),
    }
    for label, step in expert_probes.items():
        probes[label] = stats = Stats()
        rebind(stats)
        with measured(stats, server):
            await closed_loop(len(experts), args.probe_seconds, lambda i, s=step: s(experts[i]))

    mixed = Stats()
    rebind(mixed)
    deadline = time.monotonic() + args.duration
    with measured(mixed, server):
        await asyncio.gather(
            *(expert.work(deadline) for expert in experts),
            *(visitor.browse(deadline) for visitor in visitors),
        )
    for browser in anonymous + [e.browser for e in experts]:
        await browser.close()
    probes["login"] = login_stats
    probes["two tabs"] = tabs
    return probes, mixed, experts


# --- the database afterwards --------------------------------------------------------------


def check_database(seeded: dict, storage: str, experts: list[Expert]) -> dict:
    """Compare every sheet with the last acknowledged save; find submitted sheets with a
    criterion unscored."""
    from sqlalchemy import select

    from review_portal.enums import SheetStatus
    from review_portal.extensions import db
    from review_portal.reviews.queries import rubric_of, scope_of
    from review_portal.scoring.models import ScoreSheet

    app = portal_app(seeded["url"], storage)
    lost: list[str] = []
    unacknowledged: list[str] = []
    result = {"sheets": 0, "acknowledged_sheets": 0, "submitted_by_load": 0}
    with app.app_context():
        for expert in experts:
            for sheet in expert.sheets:
                result["sheets"] += 1
                stored = db.session.execute(
                    select(ScoreSheet).where(ScoreSheet.assignment_id == sheet.assignment_id)
                ).scalar_one_or_none()
                if sheet.acked is None:
                    revision = stored.revision if stored is not None else 0
                    if revision != sheet.initial_revision:
                        unacknowledged.append(
                            f"sheet of assignment {sheet.assignment_id}: revision {revision}, "
                            f"none acknowledged since {sheet.initial_revision}"
                        )
                    continue
                result["acknowledged_sheets"] += 1
                result["submitted_by_load"] += sheet.submitted
                expected = sheet.acked
                problems = []
                if stored is None:
                    problems.append("no sheet stored")
                else:
                    scores = {s.criterion_id: s.value for s in stored.scores}
                    comments = {s.criterion_id: s.comment for s in stored.scores}
                    if stored.revision != sheet.revision:
                        problems.append(f"revision {stored.revision} != {sheet.revision}")
                    if scores != expected["scores"]:
                        problems.append(f"scores {scores} != {expected['scores']}")
                    if comments != expected["comments"]:
                        problems.append("comments differ")
                    if stored.recommendations != expected["recommendations"]:
                        problems.append("recommendations differ")
                    if stored.no_conflict_confirmed != expected["confirmed"]:
                        problems.append("confirmation differs")
                    want = SheetStatus.SUBMITTED if sheet.submitted else SheetStatus.DRAFT
                    if stored.status != want:
                        problems.append(f"status {stored.status.value} != {want.value}")
                if problems:
                    lost.append(f"sheet of assignment {sheet.assignment_id}: {'; '.join(problems)}")

        incomplete = []
        submitted = db.session.execute(
            select(ScoreSheet).where(ScoreSheet.status == SheetStatus.SUBMITTED)
        ).scalars()
        count = 0
        for stored in submitted:
            count += 1
            review = stored.assignment.review
            # What the expert had to score: the rubric as it applies to the program (a
            # criterion whose ``applies_if`` does not hold is not on the sheet), and on an
            # appeal panel only the contested criteria.
            criteria = {c.id for c in rubric_of(review).criteria}
            if (scope := scope_of(review)) is not None:
                criteria &= scope
            scored = {s.criterion_id for s in stored.scores if s.value is not None}
            if criteria - scored:
                incomplete.append(f"sheet {stored.id}: {sorted(criteria - scored)} unscored")
        db.engine.dispose()
    result.update(
        lost=lost,
        unacknowledged=unacknowledged,
        submitted_in_database=count,
        incomplete=incomplete,
    )
    return result


# --- the report ---------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def cpu_share(stats: Stats) -> str:
    cpu = stats.cpu
    return "/".join(f"{cpu[k]:.0%}" for k in ("client", "server", "postgres", "others"))


CPU_HEADER = "CPU client/gunicorn/postgres/others"


def server_ms(stats: Stats, requests: int) -> float:
    """CPU milliseconds the server (gunicorn and the database's backends) spent per request:
    a figure that the other work on a shared machine hardly changes, unlike req/s."""
    cpu = stats.cpu["server"] + stats.cpu["postgres"]
    return cpu * stats.seconds * CPUS * 1000 / max(1, requests)


def table(stats: Stats) -> list[str]:
    header = f"  {'endpoint':<38} {'requests':>8} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'errors':>6}"  # fmt: skip
    lines = [header]
    for label in sorted(stats.latencies, key=lambda k: -len(stats.latencies[k])):
        values = [v * 1000 for v in stats.latencies[label]]
        line = (
            f"  {label:<38} {len(values):>8} {len(values) / stats.seconds:>7.1f} "
            f"{percentile(values, 50):>7.0f} {percentile(values, 95):>7.0f} "
            f"{percentile(values, 99):>7.0f} {stats.errors.get(label, 0):>6}"
        )
        lines.append(line)
    for label, n in stats.errors.items():
        if label not in stats.latencies:
            lines.append(f"  {label:<38} {0:>8} {'':>7} {'':>7} {'':>7} {'':>7} {n:>6}")
    return lines


def report(args, hellos: list[Stats], probes: dict[str, Stats], mixed: Stats) -> int:
    errors = 0
    print(
        f"\n== bare Flask hello world ({args.experts_online} clients, before and after the "
        f"portal); {CPU_HEADER} as shares of the {CPUS} cores"
    )
    for index, hello in enumerate(hellos):
        lines = table(hello)
        if index == 0:
            print(f"{lines[0]}  {'server CPU ms/req':>17}  {CPU_HEADER}")
        requests = len(hello.latencies["GET /"])
        print(f"{lines[1]}  {server_ms(hello, requests):>17.2f}  {cpu_share(hello)}")
        errors += sum(hello.errors.values())
    # The better of the two runs: the ratios below are the conservative ones.
    best = max(hellos, key=lambda h: len(h.latencies["GET /"]) / h.seconds)
    hello_rps = len(best.latencies["GET /"]) / best.seconds
    hello_ms = server_ms(best, len(best.latencies["GET /"]))

    print(
        f"\n== each endpoint alone: {args.experts_online} clients in a closed loop, "
        f"{args.probe_seconds:g} s each; throughput as a ratio of the hello world's "
        f"{hello_rps:.0f} req/s; server CPU per request, and the hello world's as a ratio of it "
        f"({hello_ms:.2f} ms: the throughput ratio if both had the same CPU)"
    )
    print(f"  {'endpoint':<38} {'req/s':>7} {'ratio':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'errors':>6} {'CPU ms/req':>10} {'ratio':>7}  {CPU_HEADER}")  # fmt: skip
    for label, stats in probes.items():
        if label in ("login", "two tabs"):
            continue
        values = [v * 1000 for v in stats.latencies.get(label, [])]
        rps = len(values) / stats.seconds
        print(
            f"  {label:<38} {rps:>7.1f} {rps / hello_rps:>7.3f} {percentile(values, 50):>7.0f} "
            f"{percentile(values, 95):>7.0f} {percentile(values, 99):>7.0f} "
            f"{sum(stats.errors.values()):>6} {server_ms(stats, len(values)):>10.1f} "
            f"{hello_ms / server_ms(stats, len(values)):>7.3f}  {cpu_share(stats)}"
        )
        errors += sum(stats.errors.values())
    login = probes["login"]
    print(f"\n== {args.experts_online} experts log in at once ({login.seconds:.1f} s)")
    for line in table(login):
        print(line)
    errors += sum(login.errors.values())
    tabs = probes["two tabs"]
    print(
        f"\n== then every sheet's first save from two tabs at once ({tabs.seconds:.1f} s): "
        f"{dict(sorted(tabs.statuses['POST /sheets/<id>/autosave (two tabs)'].items()))}, "
        "one 200 and one 409 expected per sheet"
    )
    for line in table(tabs):
        print(line)
    errors += sum(tabs.errors.values())

    total = sum(len(v) for v in mixed.latencies.values())
    print(
        f"\n== mixed run: {args.experts_online} experts autosaving + {args.visitors} anonymous "
        f"visitors for {args.duration:g} s, then every sheet submitted "
        f"({mixed.seconds:.1f} s in all); {total} requests, {total / mixed.seconds:.1f} req/s "
        f"= {total / mixed.seconds / hello_rps:.3f} of the hello world; "
        f"{CPU_HEADER} {cpu_share(mixed)}"
    )
    for line in table(mixed):
        print(line)
    errors += sum(mixed.errors.values())
    samples = [s for stats in (*hellos, mixed, *probes.values()) for s in stats.samples]
    for sample in samples[:20]:
        print(f"  error: {sample}")
    print(f"\nerrors = {errors}")
    return errors


def print_counts(small: dict[str, int], large: dict[str, int], sizes: str) -> int:
    print(f"\n== SQL statements per request ({sizes})")
    print(f"  {'page':<45} {'small':>6} {'large':>6}")
    growing = 0
    for page, count in small.items():
        verdict = "" if large[page] <= count else "  GROWS"
        growing += bool(verdict)
        print(f"  {page:<45} {count:>6} {large[page]:>6}{verdict}")
    print(f"growing statement counts = {growing}")
    return growing


# --- main ---------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--probe-seconds", type=float, default=8.0)
    parser.add_argument("--experts-online", type=int, default=50)
    parser.add_argument("--visitors", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--worker-class", choices=("sync", "gthread"), default="sync")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--config", choices=("production", "development"), default="production")
    parser.add_argument("--programs", type=int, default=100)
    parser.add_argument("--experts", type=int, default=200)
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="loadtest")
    parser.add_argument("--small-database", default="loadtest_small")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/7")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the databases of an earlier run: no season, only new programs to score",
    )
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.probe_seconds <= 0 or args.experts_online < 1:
        parser.error("--duration, --probe-seconds and --experts-online must be positive")
    if args.duration > 600 or args.probe_seconds > 120:
        parser.error("at most 600 s of mixed load and 120 s per probe")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    load_avg = os.getloadavg()
    print(
        f"{CPUS} CPU cores, load average {load_avg[0]:.2f} {load_avg[1]:.2f} {load_avg[2]:.2f} "
        f"at start; Python {sys.version.split()[0]}; gunicorn --workers {args.workers} "
        f"--worker-class {args.worker_class}"
        + (f" --threads {args.threads}" if args.worker_class == "gthread" else ""),
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="loadtest-") as tmp:
        tmp_path = Path(tmp)
        names = {"large": args.database, "small": args.small_database}
        # Each database's files live beside it as long as it does (``--reuse``).
        storages = {k: str(Path(tempfile.gettempdir()) / f"{v}-storage") for k, v in names.items()}
        if args.reuse:
            urls = {k: f"{args.server}/{v}" for k, v in names.items()}
        else:
            urls = {k: recreate_database(args.server, v) for k, v in names.items()}
            for path in storages.values():
                shutil.rmtree(path, ignore_errors=True)
        online = args.experts_online
        plans = {
            "large": (urls["large"], args.programs, args.experts, online),
            "small": (
                urls["small"],
                max(10, args.programs // args.scale),
                max(20, args.experts // args.scale),
                max(2, online // args.scale),
            ),
        }
        with ProcessPoolExecutor(max_workers=2, mp_context=get_context("spawn")) as pool:
            futures = {
                label: pool.submit(
                    seed_database,
                    label,
                    url,
                    storages[label],
                    programs,
                    experts,
                    extra,
                    args.seed,
                    args.reuse,
                )  # fmt: skip
                for label, (url, programs, experts, extra) in plans.items()
            }
            seeded = {label: future.result() for label, future in futures.items()}
        large = seeded["large"]
        if len(large["experts"]) < online:
            print(f"only {len(large['experts'])} experts have accepted assignments", flush=True)

        counts = {label: count_statements(seeded[label], storages[label]) for label in seeded}
        sizes = "; ".join(
            f"{label}: " + ", ".join(f"{v} {k}" for k, v in seeded[label]["sizes"].items())
            for label in ("small", "large")
        )
        growing = print_counts(counts["small"], counts["large"], sizes)

        hellos = [run_hello(args, tmp_path / "hello.log")]
        env = dict(os.environ)
        port = free_port(HOST)
        env.update(
            REVIEW_PORTAL_CONFIG=args.config,
            SECRET_KEY=secrets.token_hex(32),
            AUDIT_ANCHOR_KEY=secrets.token_hex(32),
            DATABASE_URL=urls["large"],
            STORAGE_DIR=storages["large"],
            RATELIMIT_STORAGE_URI=args.redis,
            PUBLIC_URL=f"https://{HOST}:{port}",
        )
        log = tmp_path / "portal.log"
        portal = start_server(
            gunicorn_command(args, "review_portal.wsgi:app", ROOT, port), env, log, port, "/healthz"
        )
        portal.database = args.database
        try:
            probes, mixed, experts = asyncio.run(portal_load(args, portal, large))
        finally:
            portal.stop()
        hellos.append(run_hello(args, tmp_path / "hello.log"))
        errors = report(args, hellos, probes, mixed)
        server_log = log.read_text()
        tracebacks = server_log.count("Traceback (most recent call last)")
        if tracebacks:
            print(f"\nthe portal's log has {tracebacks} tracebacks; the first:")
            start = server_log.index("Traceback (most recent call last)")
            print(server_log[max(0, start - 500) : start + 4000])

        check = check_database(large, storages["large"], experts)
        print(
            f"\n== the database afterwards: {check['sheets']} sheets of {len(experts)} experts, "
            f"{check['acknowledged_sheets']} with acknowledged saves, "
            f"{check['submitted_by_load']} submitted by the load; "
            f"{check['submitted_in_database']} submitted sheets in the database"
        )
        for line in check["lost"][:20] + check["unacknowledged"][:20] + check["incomplete"][:20]:
            print(f"  {line}")
        print(f"stored but never acknowledged = {len(check['unacknowledged'])}")
        print(f"submitted sheets missing a score = {len(check['incomplete'])}")
        print(f"lost saves = {len(check['lost'])}")
        failed = errors or check["lost"] or check["incomplete"] or growing or tracebacks
        print(json.dumps({
            "errors": errors,
            "lost_saves": len(check["lost"]),
            "incomplete_sheets": len(check["incomplete"]),
            "growing_statement_counts": growing,
            "tracebacks": tracebacks,
        }))  # fmt: skip
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
