"""Benchmark of the analytics dashboard on a national season (not a test).

    .venv/bin/python bench/analytics.py                     # a scratch SQLite file
    .venv/bin/python bench/analytics.py --database-url postgresql://postgres@127.0.0.1:5432/analytics_bench
    # options: --reviews N (100000), --experts N (5000), --requests N (15 per case),
    #          --seed N (2025), --reuse (measure an already seeded database again),
    #          --explain (PostgreSQL: EXPLAIN ANALYZE of every statement of the dashboard)

The database named is **wiped** (PostgreSQL: ``DROP SCHEMA public CASCADE``) and built with
``flask_migrate.upgrade``, then seeded with bulk Core inserts, in chunks: 300 municipalities
(Zipf sizes), 3,000 provider organizations, 5,000 experts (one or two directions, capacity
20–60), and one season (2026) of programs, each with its submitted version and one review:
88 % decided (admitted / revision / rejected by the final percentage), 4 % awaiting a
decision, 6 % in expertise (two accepted assignments, half of them past their deadline),
2 % returned. Decided and awaiting reviews have two submitted sheets of the default rubric
(``dop-general`` 1, ten criteria scored 0–2 from the program's latent quality, the expert's
severity and noise), 12 % a third sheet (and are marked divergent), 7 % a declined
assignment as well. Decisions come 5–60 days after the submission. The sums the agreement
reads (``agreement_units``, ``score_sheets.total_percent``) are then built from the scores by
``scoring.summary.rebuild``, as the migration does for existing data (the portal's services
keep them on every submission). PostgreSQL then gets ``VACUUM ANALYZE``.

Measured through the Flask test client after two warm-up requests, the cases in turn round
after round: the overview page ``GET /analytics`` (programs, timing, overdue, workload,
capacity) and the agreement page ``GET /analytics/agreement`` (alpha per criterion with its
bootstrap, calibration), each for the season as the coordinator, for one month as the
coordinator and for the season as the municipal viewer of the largest municipality, and one
CSV; median and 95th percentile of the server time, and the SQL statements per request.
Nothing is cached between requests: every request reads its figures.

Target: the dashboard under a second on PostgreSQL.
"""

from __future__ import annotations

import argparse
import logging
import math
import random
import re
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402
from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from review_portal import create_app  # noqa: E402
from review_portal.enums import (  # noqa: E402
    AccountStatus,
    AssignmentRole,
    AssignmentStatus,
    Decision,
    Direction,
    Level,
    ProgramType,
    RegistryKind,
    Role,
    SheetStatus,
    StudyForm,
)
from review_portal.extensions import db  # noqa: E402
from review_portal.scoring.summary import rebuild  # noqa: E402
from review_portal.workflow import ReviewState  # noqa: E402

CHUNK = 5000
PASSWORD = "bench-password"
CRITERIA = ("A1", "A2", "B1", "B2", "B3", "B4", "C1", "D1", "D2", "D3")
DIRECTIONS = {
    Direction.TECHNICAL: 25,
    Direction.ARTS: 22,
    Direction.SOCIAL_HUMANITARIAN: 20,
    Direction.PHYSICAL_SPORTS: 15,
    Direction.NATURAL_SCIENCE: 10,
    Direction.TOURISM_LOCAL_HISTORY: 8,
}
SEASON_START = datetime(2026, 1, 12, 7, 0, tzinfo=UTC)
TODAY = date(2026, 12, 4)


def engine_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def reset_database(url: str) -> None:
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    engine = sa.create_engine(engine_url(url), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql("DROP SCHEMA public CASCADE")
        connection.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()


def make_app(url: str):
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return create_app("testing", SQLALCHEMY_DATABASE_URI=url, STORAGE_DIR="/tmp/analytics-bench")


def bulk(table, rows: list[dict]) -> None:
    for start in range(0, len(rows), CHUNK):
        db.session.execute(insert(table), rows[start : start + CHUNK])


def zipf(n: int) -> list[float]:
    return [1.0 / (i + 1) for i in range(n)]


def seed(app, reviews: int, experts: int, seed_value: int) -> dict:
    from review_portal.accounts.models import User, UserRole
    from review_portal.accounts.services import hash_password
    from review_portal.assignment.models import Assignment
    from review_portal.experts.models import ExpertDirection, ExpertProfile
    from review_portal.organizations.models import Municipality, Organization
    from review_portal.programs.models import Program, ProgramVersion
    from review_portal.reviews.models import Review
    from review_portal.scoring.models import Score, ScoreSheet

    rng = random.Random(seed_value)
    started = time.perf_counter()
    now = SEASON_START
    n_mun, n_org = 300, 3000
    figures = {"reviews": reviews, "experts": experts}
    with app.app_context():
        bulk(
            Municipality, [{"id": i, "name": f"Муниципалитет {i:03d}"} for i in range(1, n_mun + 1)]
        )
        mun_of_org = rng.choices(range(1, n_mun + 1), zipf(n_mun), k=n_org)
        bulk(
            Organization,
            [
                {
                    "id": i,
                    "full_name": f"МБУ ДО «Дом детского творчества № {i}»",
                    "short_name": f"ДДТ № {i}",
                    "inn": f"67{i:08d}",
                    "kind": "municipal",
                    "municipality_id": mun_of_org[i - 1],
                    "address": "ул. Ленина, 1",
                    "email": f"org{i}@edu.example.ru",
                    "status": AccountStatus.APPROVED,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(1, n_org + 1)
            ],
        )
        password = hash_password(PASSWORD)
        users, roles, profiles, directions = [], [], [], []
        users.append(_user(1, "bench-coordinator@example.org", "Координатор РМЦ", password, now))
        roles.append({"user_id": 1, "role": Role.COORDINATOR})
        users.append(_user(2, "bench-municipal@example.org", "Специалист МОЦ", password, now))
        users[-1]["municipality_id"] = 1
        roles.append({"user_id": 2, "role": Role.MUNICIPAL})
        expert_ids = list(range(3, 3 + experts))
        by_direction: dict[Direction, list[int]] = {d: [] for d in Direction}
        severity = {}
        for n, uid in enumerate(expert_ids, start=1):
            users.append(_user(uid, f"expert{n}@example.org", f"Эксперт {n:05d}", password, now))
            roles.append({"user_id": uid, "role": Role.EXPERT})
            profiles.append(
                {
                    "id": n,
                    "user_id": uid,
                    "municipality_id": rng.choices(range(1, n_mun + 1), zipf(n_mun))[0],
                    "home_organization_name": "Школа",
                    "capacity": rng.randint(20, 60),
                    "created_at": now,
                    "updated_at": now,
                }
            )
            chosen = set(
                rng.choices(list(DIRECTIONS), list(DIRECTIONS.values()), k=rng.choice((1, 2)))
            )
            for d in chosen:
                directions.append({"expert_id": n, "direction": d})
                by_direction[d].append(uid)
            severity[uid] = rng.gauss(0.0, 0.07)
        bulk(User, users)
        bulk(UserRole, roles)
        bulk(ExpertProfile, profiles)
        bulk(ExpertDirection, directions)

        org_weight = [rng.lognormvariate(0.0, 1.0) for _ in range(n_org)]
        assignment_id = sheet_id = 0
        counts = {"assignments": 0, "sheets": 0, "scores": 0}
        for first in range(1, reviews + 1, CHUNK):
            programs, versions, rows, assignments, sheets, scores = [], [], [], [], [], []
            for i in range(first, min(first + CHUNK, reviews + 1)):
                org = rng.choices(range(1, n_org + 1), org_weight)[0]
                direction = rng.choices(list(DIRECTIONS), list(DIRECTIONS.values()))[0]
                submitted = SEASON_START + timedelta(seconds=rng.randint(0, 300 * 86400))
                data = {
                    "title": f"Программа {i}",
                    "direction": direction,
                    "level": Level.BASIC,
                    "program_type": ProgramType.GENERAL_DEVELOPMENTAL,
                    "age_min": 7,
                    "age_max": 14,
                    "total_hours": 72,
                    "duration_months": 9,
                    "study_form": StudyForm.FULL_TIME,
                    "group_min": 8,
                    "group_max": 15,
                    "requested_registry_kind": RegistryKind.CERTIFIED,
                    "municipality_id": mun_of_org[org - 1],
                }
                programs.append(
                    {
                        "id": i,
                        **data,
                        "organization_id": org,
                        "created_by_id": 1,
                        "created_at": submitted,
                        "updated_at": submitted,
                    }
                )
                versions.append(
                    {
                        "id": i,
                        **data,
                        "program_id": i,
                        "number": 1,
                        "organization_id": org,
                        "created_at": submitted,
                        "created_by_id": 1,
                    }
                )
                roll = rng.random()
                state = (
                    ReviewState.RETURNED
                    if roll < 0.02
                    else ReviewState.IN_REVIEW
                    if roll < 0.08
                    else ReviewState.AWAITING_DECISION
                    if roll < 0.12
                    else ReviewState.ADMITTED
                )
                review = {
                    "id": i,
                    "program_id": i,
                    "round": 1,
                    "version_id": i,
                    "state": state,
                    "state_changed_at": submitted,
                    "created_at": submitted,
                    "rubric_id": None if state == ReviewState.RETURNED else "dop-general",
                    "rubric_version": None if state == ReviewState.RETURNED else 1,
                    "extra_experts": 0,
                }
                rows.append(review)
                if state == ReviewState.RETURNED:
                    continue
                pool = by_direction[direction]
                chosen = rng.sample(pool, 3 if len(pool) >= 3 else len(pool))
                quality = {c: rng.betavariate(4, 2) for c in CRITERIA}
                if state == ReviewState.IN_REVIEW:
                    for seat, uid in enumerate(chosen[:2], start=1):
                        assignment_id += 1
                        assignments.append(
                            _assignment(
                                assignment_id,
                                i,
                                uid,
                                seat,
                                AssignmentStatus.ACCEPTED,
                                submitted,
                                TODAY + timedelta(days=rng.randint(-10, 10)),
                            )
                        )
                    continue
                third = rng.random() < 0.12
                seats = chosen[: 3 if third else 2]
                totals = []
                for seat, uid in enumerate(seats, start=1):
                    assignment_id += 1
                    assignments.append(
                        _assignment(
                            assignment_id,
                            i,
                            uid,
                            seat,
                            AssignmentStatus.COMPLETED,
                            submitted,
                            submitted.date() + timedelta(days=14),
                            AssignmentRole.THIRD if seat == 3 else AssignmentRole.INITIAL,
                        )
                    )
                    sheet_id += 1
                    sheets.append(
                        {
                            "id": sheet_id,
                            "assignment_id": assignment_id,
                            "status": SheetStatus.SUBMITTED,
                            "recommendations": "",
                            "no_conflict_confirmed": True,
                            "revision": 3,
                            "submitted_at": submitted + timedelta(days=7),
                        }
                    )
                    total = 0
                    for c in CRITERIA:
                        seen = quality[c] - severity[uid] + rng.gauss(0.0, 0.12)
                        value = 0 if seen < 0.3 else 1 if seen < 0.7 else 2
                        total += value
                        scores.append(
                            {"sheet_id": sheet_id, "criterion_id": c, "value": value, "comment": ""}
                        )
                    totals.append(total)
                others = [uid for uid in pool[:8] if uid not in seats]
                if others and rng.random() < 0.07:
                    assignment_id += 1
                    assignments.append(
                        _assignment(
                            assignment_id,
                            i,
                            others[0],
                            9,
                            AssignmentStatus.DECLINED,
                            submitted,
                            submitted.date(),
                        )
                    )
                review["divergent"] = third
                if state == ReviewState.AWAITING_DECISION:
                    continue
                percent = 100 * statistics.mean(sorted(totals)[-2:]) / 20
                decision = (
                    Decision.ADMITTED
                    if percent >= 70
                    else Decision.REVISION_REQUIRED
                    if percent >= 50
                    else Decision.REJECTED
                )
                decided = submitted + timedelta(days=5 + rng.gammavariate(2.0, 8.0))
                review.update(
                    state=ReviewState(decision.value),
                    decision=decision,
                    computed_decision=decision,
                    decided_at=decided,
                    decided_by_id=1,
                    state_changed_at=decided,
                )
            bulk(Program, programs)
            bulk(ProgramVersion, versions)
            bulk(Review, rows)
            bulk(Assignment, assignments)
            bulk(ScoreSheet, sheets)
            bulk(Score, scores)
            counts["assignments"] += len(assignments)
            counts["sheets"] += len(sheets)
            counts["scores"] += len(scores)
        db.session.execute(
            sa.update(Program)
            .values(current_review_id=Program.id)
            .execution_options(synchronize_session=False)
        )
        if db.engine.dialect.name == "postgresql":
            for table in (
                "users",
                "organizations",
                "programs",
                "program_versions",
                "reviews",
                "assignments",
                "score_sheets",
                "expert_profiles",
                "municipalities",
            ):
                db.session.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
        db.session.commit()
        figures.update(counts)
        figures["seed_s"] = time.perf_counter() - started
        # The sheets were inserted directly, not submitted through scoring, so the sums the
        # agreement reads are built the way the migration builds them for existing data.
        rebuilt = time.perf_counter()
        figures.update(rebuild(db.session.connection()))
        db.session.commit()
        figures["rebuild_agreement_s"] = time.perf_counter() - rebuilt
        db.session.remove()
    return figures


def _user(uid, email, name, password, now) -> dict:
    return {
        "id": uid,
        "email": email,
        "password_hash": password,
        "full_name": name,
        "status": AccountStatus.APPROVED,
        "active": True,
        "consent_at": now,
        "consent_version": "1",
        "created_at": now,
        "updated_at": now,
    }


def _assignment(
    aid, review_id, expert_id, seat, status, assigned, due, role=AssignmentRole.INITIAL
):
    return {
        "id": aid,
        "review_id": review_id,
        "expert_id": expert_id,
        "seat": seat,
        "role": role,
        "status": status,
        "assigned_at": assigned,
        "due_on": due,
    }


def vacuum(url: str) -> None:
    if not url.startswith("postgresql"):
        return
    engine = sa.create_engine(engine_url(url), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()


class Counter:
    def __init__(self, engine):
        self.statements: list[tuple[str, object]] = []
        sa.event.listen(engine, "before_cursor_execute", self._before)

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        if not statement.startswith("BEGIN"):
            self.statements.append((statement, parameters))


def login(client, email: str) -> None:
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)
    response = client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302, response.status_code


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


def measure(app, requests: int, explain: bool) -> list[dict]:
    with app.app_context():
        counter = Counter(db.engine)
    cases = [
        ("coordinator", "/analytics?season=2026"),
        ("coordinator", "/analytics?start=2026-06-01&end=2026-06-30"),
        ("municipal", "/analytics?season=2026"),
        ("coordinator", "/analytics/programs_by_municipality.csv?season=2026"),
        ("coordinator", "/analytics/agreement?season=2026"),
        ("coordinator", "/analytics/agreement?start=2026-06-01&end=2026-06-30"),
        ("municipal", "/analytics/agreement?season=2026"),
    ]
    clients = {}
    for who, email in (
        ("coordinator", "bench-coordinator@example.org"),
        ("municipal", "bench-municipal@example.org"),
    ):
        clients[who] = app.test_client()
        login(clients[who], email)
    times: dict[int, list[float]] = {n: [] for n in range(len(cases))}
    statements: dict[int, int] = {}
    for round_ in range(requests + 2):
        for n, (who, url) in enumerate(cases):
            counter.statements = []
            started = time.perf_counter()
            response = clients[who].get(url)
            body = response.get_data()
            elapsed = time.perf_counter() - started
            assert response.status_code == 200, (url, response.status_code)
            assert len(body) > 1000
            statements[n] = len(counter.statements)
            if round_ >= 2:
                times[n].append(elapsed * 1000)
            if explain and round_ == 0 and n == 0:
                explain_all(app, list(counter.statements))
    return [
        {
            "who": who,
            "url": url,
            "median_ms": statistics.median(times[n]),
            "p95_ms": percentile(times[n], 0.95),
            "statements": statements[n],
        }
        for n, (who, url) in enumerate(cases)
    ]


def explain_all(app, statements) -> None:
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            return
        with db.engine.connect() as connection:
            for statement, parameters in statements:
                started = time.perf_counter()
                connection.exec_driver_sql(statement, parameters)
                elapsed = (time.perf_counter() - started) * 1000
                print(f"--- {elapsed:.1f} ms: {statement[:160]!r}")
                if elapsed > 50:
                    plan = connection.exec_driver_sql("EXPLAIN ANALYZE " + statement, parameters)
                    print("\n".join(row[0] for row in plan))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default="sqlite:////tmp/analytics-bench.sqlite")
    parser.add_argument("--reviews", type=int, default=100_000)
    parser.add_argument("--experts", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=15)
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args(argv)
    url = args.database_url
    if not args.reuse:
        reset_database(url)
        app = make_app(url)
        with app.app_context():
            upgrade()
        figures = seed(app, args.reviews, args.experts, args.seed)
        print(f"seeded in {figures['seed_s']:.0f} s: {figures}")
        with app.app_context():
            db.engine.dispose()
        started = time.perf_counter()
        vacuum(url)
        print(f"vacuum analyze: {time.perf_counter() - started:.1f} s")
    app = make_app(url)
    dialect = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    print(f"{dialect}, {args.requests} requests per case after 2 warm-up rounds")
    print(f"{'as':12} {'request':50} {'median':>8} {'p95':>8} {'stmts':>6}")
    for row in measure(app, args.requests, args.explain):
        print(
            f"{row['who']:12} {row['url']:50} {row['median_ms']:7.0f}ms {row['p95_ms']:7.0f}ms "
            f"{row['statements']:6d}"
        )


if __name__ == "__main__":
    main()
