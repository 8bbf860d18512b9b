"""A web process starts without the heavy libraries that only some commands, jobs or
downloads use (issue 25: they were a third of its start's CPU; ``bench/startup.py``
measures it). Each is imported where it is used; the Celery app is made on first use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Imported only by what uses them: ``flask db``, the job queue, XLSX exports, analytics,
#: the rendering pool, document extraction, imports, calendars, passwords.
NOT_AT_START = (
    "alembic",
    "flask_migrate",
    "mako",
    "celery",
    "kombu",
    "billiard",
    "openpyxl",
    "numpy",
    "multiprocessing",
    "lxml",
    "email_validator",
    "holidays",
    "argon2",
    "stdnum",
    "dateutil",
    "ortools",
    "pypdf",
    "weasyprint",
)


def _run(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "FLASK_APP"} | {
        "REVIEW_PORTAL_CONFIG": "testing",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'start.sqlite'}",
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_web_process_starts_without_the_heavy_libraries(tmp_path):
    code = (
        "import sys, json, review_portal.wsgi;"
        f"print(json.dumps(sorted(m for m in {NOT_AT_START!r} if m in sys.modules)))"
    )
    done = _run(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == []


def test_the_celery_app_is_made_once_on_first_use(tmp_path):
    code = (
        "import sys, review_portal.wsgi as w;"
        "from review_portal.jobs.worker import RUN_JOB, celery_app;"
        "print('celery' in sys.modules);"
        "c = w.celery;"
        "print(c is celery_app(w.app) is w.app.extensions['celery'], RUN_JOB in c.tasks)"
    )
    done = _run(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True", "True"]
