"""Audited writes at the same time on PostgreSQL (a benchmark, not a test: never run by
``make test`` or pytest).

    .venv/bin/python bench/audit_chain.py
    # options: --database-url postgresql://postgres@127.0.0.1:5432/postgres (a scratch
    #          database ``<name>_audit_bench`` is made beside it and dropped at the end),
    #          --writers N (50), --hold-ms MS (20), --long-seconds S (2), --alone N (300)

It measures whichever code is on ``PYTHONPATH``, so the same script compares two versions
(run it in a worktree of each):

- (a) one audited unit of work alone — ``record_event`` and the commit (and, where the code
  has one, the chaining step after it) — median and p95 of ``--alone``;
- (b) ``--writers`` units of work released together by a barrier, each writing its record
  and then keeping its transaction open ``--hold-ms`` (the work a request does after its
  first audit record) before it commits: latency from the barrier to the end of each;
- (c) a long audited transaction (an import or a publication: a record, then
  ``--long-seconds`` of work) with 20 short audited units of work started 0.2 s into it:
  how long the short ones take.

When every audited transaction locks one chain-head row from its first record to its
commit, (b) and (c) run one at a time; when records are linked after the commit, they
overlap. At the end the chain is verified.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def line(label: str, values: list[float]) -> str:
    return (
        f"  {label:<58} p50 {statistics.median(values):8.1f}  p95 {percentile(values, 0.95):8.1f}"
        f"  max {max(values):8.1f} ms  (n={len(values)})"
    )


def scratch_url(url: str) -> tuple[str, sa.Engine]:
    base = sa.engine.make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"{base.database}_audit_bench"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    return base.set(database=name).render_as_string(hide_password=False), admin


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--writers", type=int, default=50)
    parser.add_argument("--hold-ms", type=float, default=20.0)
    parser.add_argument("--long-seconds", type=float, default=2.0)
    parser.add_argument("--alone", type=int, default=300)
    args = parser.parse_args(argv)

    from flask_migrate import upgrade

    from review_portal import create_app
    from review_portal.audit.services import record_event
    from review_portal.extensions import db
    from review_portal.unit_of_work import unit_of_work

    try:
        from review_portal.audit.verification import verify_chain
    except ImportError:  # the code before the chain was linked after commit
        from review_portal.audit.services import verify_chain

    url, admin = scratch_url(args.database_url)
    app = create_app(
        "testing",
        SQLALCHEMY_DATABASE_URI=url,
        STORAGE_DIR=tempfile.mkdtemp(prefix="audit-bench-"),
        SQLALCHEMY_ENGINE_OPTIONS={"pool_size": args.writers + 25, "max_overflow": 10},
    )
    try:
        with app.app_context():
            upgrade()
        print(
            f"code: {ROOT}; load average at start {' '.join(map(str, __import__('os').getloadavg()))}"
        )

        def audited(label: str, hold: float = 0.0) -> float:
            started = time.perf_counter()
            with app.app_context():
                with unit_of_work():
                    record_event("bench.write", object_type="bench", object_id=label)
                    if hold:
                        time.sleep(hold)
                db.session.remove()
            return (time.perf_counter() - started) * 1000

        alone = [audited(f"alone-{i}") for i in range(args.alone + 20)][20:]
        print("(a) one audited unit of work alone")
        print(line("record_event + commit (+ chaining step)", alone))

        barrier = threading.Barrier(args.writers)
        together: list[float] = []

        def writer(i: int) -> None:
            barrier.wait(timeout=60)
            together.append(audited(f"together-{i}", args.hold_ms / 1000))

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(args.writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)
        print(f"(b) {args.writers} audited units of work at once, each open {args.hold_ms:g} ms")
        print(line("from the barrier to the end of each", together))

        long_done = threading.Event()
        long_ms: list[float] = []

        def long_transaction() -> None:
            long_ms.append(audited("long", args.long_seconds))
            long_done.set()

        short: list[float] = []
        runner = threading.Thread(target=long_transaction)
        runner.start()
        time.sleep(0.2)
        shorts = [
            threading.Thread(target=lambda i=i: short.append(audited(f"short-{i}")))
            for i in range(20)
        ]
        for thread in shorts:
            thread.start()
        for thread in shorts:
            thread.join(timeout=600)
        runner.join(timeout=600)
        print(f"(c) 20 short audited units of work during a {args.long_seconds:g} s audited one")
        print(line("each short one", short))

        with app.app_context():
            report = verify_chain()
            print(f"chain verified: ok={report.ok}, {report.checked} records")
            db.session.remove()
            db.engine.dispose()
    finally:
        with admin.connect() as connection:
            name = sa.engine.make_url(url).database
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
